-- AlterTable (written by hand: SQLite adds a column with a constant default in place, no table copy; test/db/schema-drift.test.ts checks it yields the model)
ALTER TABLE "sessions" ADD COLUMN "refreshGeneration" INTEGER NOT NULL DEFAULT 0;
