// @ts-check
/**
 * The client SDK as vouch serves it (packages/client/dist at /account/sdk/),
 * typed from the @vouch/client package. The pages import it from here only,
 * so the URL lives in one place.
 */
// @ts-expect-error -- a URL path that vouch serves, not a file next to this one; the types come from the package below.
import * as served from '/account/sdk/index.js'

/** @type {typeof import('@vouch/client')} */
const sdk = served

export const { createVouchClient, describeUserAgent, VouchError } = sdk
