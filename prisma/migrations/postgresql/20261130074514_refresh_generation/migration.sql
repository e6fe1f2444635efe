-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "refreshGeneration" INTEGER NOT NULL DEFAULT 0;
