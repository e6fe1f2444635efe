-- AlterTable
ALTER TABLE "sessions" ADD COLUMN "deviceKey" TEXT;

-- AlterTable
ALTER TABLE "users" ADD COLUMN "disabledAt" DATETIME;

-- CreateTable
CREATE TABLE "security_events" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "type" TEXT NOT NULL,
    "at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "userId" TEXT,
    "sessionId" TEXT,
    "ip" TEXT,
    "userAgent" TEXT,
    "actor" TEXT NOT NULL,
    "actorId" TEXT,
    "detail" TEXT
);

-- CreateTable
CREATE TABLE "api_clients" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "kind" TEXT NOT NULL,
    "secretHash" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateIndex
CREATE INDEX "security_events_userId_id_idx" ON "security_events"("userId", "id");

-- CreateIndex
CREATE INDEX "security_events_at_idx" ON "security_events"("at");

-- CreateIndex
CREATE INDEX "sessions_userId_deviceKey_idx" ON "sessions"("userId", "deviceKey");
