/**
 * A plain-text message whose lines arrive as written. nodemailer sends any
 * text with a line over 76 characters as quoted-printable, which folds the
 * line with soft breaks (`=` at its end) and writes each `=` as `=3D`: a
 * reset link (`RESET_URL?token=…`, well over 76 characters) then reaches a
 * person reading the raw message, or a naive client, broken. So the body is
 * laid out here instead:
 *
 * - ASCII text whose lines fit in 998 octets (the default template, with any
 *   link vouch builds) is sent `7bit`: as written, CRLF line ends, nothing
 *   encoded, legal for lines up to 998 octets (RFC 5322, RFC 2045);
 * - anything else (a deployer's template in another language) is sent
 *   base64, which every client decodes and which never splits a line of
 *   the decoded text. Not 8bit: that needs the SMTP server's 8BITMIME,
 *   which is not known when the message is composed.
 *
 * The headers (From, To, Subject as encoded words when not ASCII, Date,
 * Message-ID, MIME-Version) are still nodemailer's; the message goes out as
 * `raw` with its envelope, so nodemailer re-encodes nothing.
 */
import MimeNode from 'nodemailer/lib/mime-node'
import type { MimeNodeEnvelope } from 'nodemailer/lib/mime-node'

export interface PlainTextMail {
  from: string
  to: string
  subject: string
  text: string
}

/** Printable ASCII and tab, in lines of at most 998 octets (ASCII: characters). */
const SEVEN_BIT = /^(?:[\t\x20-\x7e]{0,998}\n)*[\t\x20-\x7e]{0,998}$/

/** The transfer encoding `text` (with LF line ends) is sent in. */
export function transferEncoding (text: string): '7bit' | 'base64' {
  return SEVEN_BIT.test(text) ? '7bit' : 'base64'
}

/** The whole message, for nodemailer's `raw`, and its envelope. */
export async function composePlainText (mail: PlainTextMail): Promise<{ envelope: MimeNodeEnvelope, raw: Buffer }> {
  const text = mail.text.replace(/\r\n?/g, '\n')
  const encoding = transferEncoding(text)
  const node = new MimeNode('text/plain; charset=utf-8')
  node.setHeader({ From: mail.from, To: mail.to, Subject: mail.subject, 'Content-Transfer-Encoding': encoding })
  const envelope = node.getEnvelope()
  if (encoding === 'base64') {
    // nodemailer honours an explicit base64.
    node.setContent(text)
    return { envelope, raw: await node.build() }
  }
  // No content on the node: its headers keep the 7bit set above, which nodemailer would otherwise replace.
  return { envelope, raw: Buffer.from(`${node.buildHeaders()}\r\n\r\n${text.replace(/\n/g, '\r\n')}`) }
}
