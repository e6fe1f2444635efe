#!/bin/sh
# Stand-in for Prisma's native schema engine, which cannot be downloaded offline.
# vouch migrates with the WebAssembly schema engine instead.
echo "vouch: the native Prisma schema engine is not available offline." >&2
echo "Apply migrations with 'npm run db:migrate'; create one with 'npm run db:diff -- <name>'." >&2
exit 1
