// `npm run keys:rotate`: adds a signing key to DATA_DIR/signing-keys.json,
// published now and signing after KEY_PUBLISH_DELAY; the key it replaces
// retires once every token it signed has expired (see key-rotation.ts).
import { loadConfig } from '../config.js'
import { rotateKeyFile } from './key-rotation.js'

const config = loadConfig(process.env)
if (config.tokens.signingKeys !== undefined) {
  console.error('vouch: SIGNING_KEYS is set; rotate by putting a new key first in it (with "activatesAt"), not with this command')
  process.exit(2)
}
const result = await rotateKeyFile({
  dataDir: config.dataDir,
  algorithm: config.tokens.algorithm,
  publishDelay: config.tokens.keyPublishDelay,
  retireAfter: config.tokens.accessTokenTtl + config.tokens.clockSkew,
})
console.log(JSON.stringify(result, null, 2))
