/**
 * Text made safe for XML 1.0 (and for HTML, which needs the same escapes): the five markup
 * characters become references, and characters XML cannot carry at all (control characters other
 * than tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF) are written out as
 * `\u{…}` so that a report never loses them silently and never becomes unreadable for them.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point: XML cannot carry them.
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function visible(text: string): string {
  return text.replace(NOT_XML, (c) => `\\u{${c.charCodeAt(0).toString(16).padStart(4, '0')}}`);
}

/** For element content. */
export function escapeText(text: string): string {
  return visible(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * For attribute values (always written in double quotes). Tab, newline and carriage return are
 * written as character references, since a parser would otherwise turn them into spaces.
 */
export function escapeAttr(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}
