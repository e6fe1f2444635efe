/** vouch's version, from the server package's package.json: the API document's and `vouch --version`'s. */
import { readFileSync } from 'node:fs'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
