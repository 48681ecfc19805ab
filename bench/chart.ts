/** A dependency-free horizontal bar chart in SVG: one panel per call, stacked by the caller. */
export interface Bar {
  label: string;
  value: number;
  color: string;
}

const WIDTH = 760;
const LABEL_W = 300;
const BAR_H = 18;
const GAP = 6;

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function barPanel(title: string, unit: string, bars: Bar[], top: number): { svg: string; height: number } {
  const max = Math.max(...bars.map((b) => b.value), 1);
  const plotW = WIDTH - LABEL_W - 90;
  const parts = [`<text x="10" y="${top + 18}" font-weight="bold">${escape(title)}</text>`];
  bars.forEach((b, i) => {
    const y = top + 30 + i * (BAR_H + GAP);
    const w = Math.max(1, (b.value / max) * plotW);
    parts.push(
      `<text x="${LABEL_W - 8}" y="${y + 13}" text-anchor="end">${escape(b.label)}</text>`,
      `<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${b.color}"/>`,
      `<text x="${LABEL_W + w + 6}" y="${y + 13}">${Math.round(b.value).toLocaleString('en-US')} ${unit}</text>`,
    );
  });
  return { svg: parts.join('\n'), height: 40 + bars.length * (BAR_H + GAP) };
}

export function svgDocument(panels: { svg: string; height: number }[]): string {
  const height = panels.reduce((h, p) => h + p.height, 10);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${panels.map((p) => p.svg).join('\n')}
</svg>
`;
}
