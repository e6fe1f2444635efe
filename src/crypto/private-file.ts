import { chmod, mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * Writes key material readable by its owner only: the folder is created
 * 0700, the file is written 0600 under a temporary name and renamed into
 * place, so it is never visible half-written or with looser permissions
 * (even when a file of that name already existed with other modes).
 */
export async function writePrivateFile (file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, content, { mode: 0o600 })
  await chmod(temporary, 0o600)
  await rename(temporary, file)
}
