import { escapeAttr, escapeText } from './xml.ts';

/**
 * A self-contained HTML page (docs/reports.md, "HTML reports"): inline styles, inline SVG, no
 * script, and a content security policy that forbids the browser to fetch anything at all, so the
 * page opens the same from a CI artefact store, a mail attachment or a disk with no network.
 */
export function htmlPage(title: string, body: string[]): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeText(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeText(title)}</h1>`,
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** A table; cells are text (escaped here). `numeric` columns align right. */
export function htmlTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[], opts: { numeric?: readonly number[]; id?: string } = {}): string {
  const right = new Set(opts.numeric ?? []);
  const cell = (tag: 'th' | 'td', v: string | number, i: number): string => `<${tag}${right.has(i) ? ' class="num"' : ''}>${escapeText(String(v))}</${tag}>`;
  return [
    `<table${opts.id ? ` id="${escapeAttr(opts.id)}"` : ''}>`,
    `<tr>${headers.map((h, i) => cell('th', h, i)).join('')}</tr>`,
    ...rows.map((r) => `<tr>${r.map((v, i) => cell('td', v, i)).join('')}</tr>`),
    '</table>',
  ].join('\n');
}

export const esc = escapeText;
export const escAttr = escapeAttr;

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; margin: 24px auto; max-width: 1100px; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #d5d9e0; padding-bottom: 4px; }
.headline { font-size: 18px; font-weight: 700; } .ok { color: #059669; } .bad { color: #dc2626; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border-bottom: 1px solid #e5e7eb; padding: 3px 10px; text-align: left; } .num { text-align: right; font-variant-numeric: tabular-nums; }
pre, code { font: 12px/1.4 ui-monospace, monospace; } pre { background: #f3f4f6; padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.failure { border-left: 4px solid #dc2626; padding: 4px 12px; margin: 12px 0; background: #fff7f7; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
svg.chart { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; }
svg .title { font: 600 13px sans-serif; fill: #1d2330; } svg .tick, svg .legend text { font: 11px sans-serif; fill: #4b5563; } svg .axis { font: 12px sans-serif; fill: #374151; }
svg .plot { fill: #fbfcfd; stroke: #e5e7eb; } svg .grid { stroke: #eef0f3; }
svg polyline, svg .legend line, svg line.reference { fill: none; stroke-width: 2; } svg .dashed { stroke-dasharray: 6 4; } svg circle.hollow { fill: #fff; stroke-width: 1.5; }
svg .s0 { stroke: #2563eb; fill: #2563eb; } svg .s1 { stroke: #db2777; fill: #db2777; } svg .s2 { stroke: #059669; fill: #059669; } svg .s3 { stroke: #d97706; fill: #d97706; }
svg .s4 { stroke: #7c3aed; fill: #7c3aed; } svg .s5 { stroke: #0891b2; fill: #0891b2; } svg .s6 { stroke: #65a30d; fill: #65a30d; } svg .s7 { stroke: #9f1239; fill: #9f1239; }
svg polyline.s0, svg polyline.s1, svg polyline.s2, svg polyline.s3, svg polyline.s4, svg polyline.s5, svg polyline.s6, svg polyline.s7 { fill: none; }
svg rect.bar { stroke: none; }
`;
