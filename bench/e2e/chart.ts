/**
 * A small SVG bar chart, written by hand (no chart library): one panel per measure, one
 * horizontal bar per path, the value printed beside each bar. A panel may clip its scale
 * (`clipAt`) so the tunnels stay readable beside the bare veth: a clipped bar runs the full
 * width with a white break mark and its true value. Pure (returns text); tested in
 * test/bench/chart.test.ts, XML well-formedness checked by Python's parser.
 */

export interface ChartBar {
  label: string;
  /** null: not measured (drawn as "n/a", no bar). */
  value: number | null;
  /** Fill colour (SVG colour text). */
  color: string;
}

export interface ChartPanel {
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  bars: ChartBar[];
  /** Scale the panel to at most this value; larger bars are drawn clipped. */
  clipAt?: number;
  /** Decimals of the printed values (default 0). */
  digits?: number;
}

export interface ChartSpec {
  title: string;
  /** Second line: date, machine, how measured. */
  subtitle: string;
  panels: ChartPanel[];
  /** Panels per row (default 2). */
  columns?: number;
}

/** Geometry, in SVG user units (px). */
export const CHART = {
  width: 960,
  header: 58,
  panelGap: 18,
  panelTitle: 24,
  barHeight: 15,
  barPitch: 21,
  labelWidth: 178,
  valueWidth: 78,
  margin: 16,
  font: 'system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif',
} as const;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The width a bar gets in a panel whose bar area is `area` px wide (clipped bars: full width). */
export function barWidth(value: number, scaleMax: number, area: number): number {
  if (!(scaleMax > 0) || !(value > 0)) return 0;
  return Math.min(area, (value / scaleMax) * area);
}

/** The largest value a panel's scale shows: its largest bar, or clipAt when that is smaller. */
export function panelScale(p: ChartPanel): number {
  let max = 0;
  for (const b of p.bars) if (b.value !== null && b.value > max) max = b.value;
  return p.clipAt !== undefined && p.clipAt > 0 && p.clipAt < max ? p.clipAt : max;
}

const r1 = (x: number): string => (Math.round(x * 10) / 10).toString();

export function barChartSvg(spec: ChartSpec): string {
  const cols = Math.max(1, spec.columns ?? 2);
  const panelW = (CHART.width - 2 * CHART.margin - (cols - 1) * CHART.panelGap) / cols;
  const area = panelW - CHART.labelWidth - CHART.valueWidth;
  const rowsOfPanels: ChartPanel[][] = [];
  for (let i = 0; i < spec.panels.length; i += cols) rowsOfPanels.push(spec.panels.slice(i, i + cols));

  const parts: string[] = [];
  let y = CHART.header;
  for (const row of rowsOfPanels) {
    const bars = Math.max(...row.map((p) => p.bars.length));
    const h = CHART.panelTitle + bars * CHART.barPitch + 6;
    row.forEach((p, i) => {
      const x0 = CHART.margin + i * (panelW + CHART.panelGap);
      const scale = panelScale(p);
      const digits = p.digits ?? 0;
      parts.push(`<g class="panel">`);
      parts.push(
        `<text x="${r1(x0)}" y="${r1(y + 15)}" font-size="13" font-weight="600">${escapeXml(p.title)}` +
          `<tspan dx="6" font-weight="400" fill="#555">— ${escapeXml(p.unit)}, ${p.better} is better</tspan></text>`,
      );
      p.bars.forEach((b, j) => {
        const by = y + CHART.panelTitle + j * CHART.barPitch;
        const bx = x0 + CHART.labelWidth;
        parts.push(
          `<text x="${r1(bx - 6)}" y="${r1(by + CHART.barHeight - 3)}" font-size="11.5" text-anchor="end">${escapeXml(b.label)}</text>`,
        );
        if (b.value === null || !Number.isFinite(b.value)) {
          parts.push(`<text x="${r1(bx + 2)}" y="${r1(by + CHART.barHeight - 3)}" font-size="11" fill="#888">n/a</text>`);
          return;
        }
        const w = barWidth(b.value, scale, area);
        parts.push(`<rect x="${r1(bx)}" y="${r1(by)}" width="${r1(w)}" height="${CHART.barHeight}" fill="${escapeXml(b.color)}"/>`);
        if (b.value > scale) {
          // clipped: a white break near the end of the bar
          const bk = bx + w - 14;
          parts.push(
            `<path d="M${r1(bk)} ${r1(by + CHART.barHeight + 1)} l5 -${CHART.barHeight + 2} M${r1(bk + 5)} ${r1(by + CHART.barHeight + 1)} l5 -${CHART.barHeight + 2}" stroke="#fff" stroke-width="2"/>`,
          );
        }
        parts.push(
          `<text x="${r1(bx + w + 4)}" y="${r1(by + CHART.barHeight - 3)}" font-size="11">${escapeXml(b.value.toFixed(digits))}</text>`,
        );
      });
      parts.push(`</g>`);
    });
    y += h + CHART.panelGap;
  }
  const height = Math.ceil(y - CHART.panelGap + CHART.margin);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART.width}" height="${height}" viewBox="0 0 ${CHART.width} ${height}" font-family='${CHART.font}'>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${CHART.margin}" y="24" font-size="16" font-weight="700">${escapeXml(spec.title)}</text>`,
    `<text x="${CHART.margin}" y="44" font-size="11.5" fill="#444">${escapeXml(spec.subtitle)}</text>`,
    ...parts,
    `</svg>`,
    '',
  ].join('\n');
}
