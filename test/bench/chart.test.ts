/**
 * The e2e chart generator (bench/e2e/chart.ts). Oracle for well-formedness: Python's XML parser
 * (xml.etree), which also counts the bars and reads their widths back.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { barChartSvg, barWidth, CHART, escapeXml, panelScale, type ChartSpec } from '../../bench/e2e/chart.ts';

const spec: ChartSpec = {
  title: 'ipferry vs OpenVPN <test> & "quotes"',
  subtitle: '2026-12-06 · 2 x AMD EPYC',
  panels: [
    {
      title: 'iperf3 TCP, 1 stream',
      unit: 'Mbit/s',
      better: 'higher',
      clipAt: 2000,
      bars: [
        { label: 'bare veth', value: 19016, color: '#8c8c8c' },
        { label: 'ipferry', value: 1469, color: '#1f77b4' },
        { label: 'OpenVPN 2.6', value: 1000, color: '#ff7f0e' },
      ],
    },
    {
      title: 'CPU per GB',
      unit: 's/GB',
      better: 'lower',
      digits: 2,
      bars: [
        { label: 'bare veth', value: null, color: '#8c8c8c' },
        { label: 'ipferry', value: 3, color: '#1f77b4' },
        { label: 'OpenVPN <2.6>', value: 6, color: '#ff7f0e' },
      ],
    },
    { title: 'empty', unit: 'x', better: 'lower', bars: [] },
  ],
};

const HAVE_PYTHON = spawnSync('python3', ['-c', 'import xml.etree.ElementTree'], { stdio: 'ignore' }).status === 0;

/** Python parses the SVG and returns every rect's width and every text's content. */
function pythonRead(svg: string): { rects: { width: number; fill: string }[]; texts: string[]; root: string } {
  const py = [
    'import sys, json, xml.etree.ElementTree as E',
    'r = E.fromstring(sys.stdin.read())',
    'ns = "{http://www.w3.org/2000/svg}"',
    'rects = [{"width": float(e.get("width").rstrip("%")), "fill": e.get("fill")} for e in r.iter(ns + "rect") if not e.get("width").endswith("%")]',
    'texts = ["".join(e.itertext()) for e in r.iter(ns + "text")]',
    'print(json.dumps({"rects": rects, "texts": texts, "root": r.tag}))',
  ].join('\n');
  const p = spawnSync('python3', ['-c', py], { input: svg, encoding: 'utf8' });
  if (p.status !== 0) throw new Error(p.stderr);
  return JSON.parse(p.stdout) as ReturnType<typeof pythonRead>;
}

describe('barChartSvg', () => {
  const svg = barChartSvg(spec);

  it.runIf(HAVE_PYTHON)('is well-formed SVG: one rect per measured bar, titles and labels escaped and intact', () => {
    const r = pythonRead(svg);
    expect(r.root).toBe('{http://www.w3.org/2000/svg}svg');
    expect(r.rects.map((x) => x.fill)).toEqual(['#8c8c8c', '#1f77b4', '#ff7f0e', '#1f77b4', '#ff7f0e']);
    expect(r.texts).toContain('ipferry vs OpenVPN <test> & "quotes"');
    expect(r.texts).toContain('OpenVPN <2.6>');
    expect(r.texts).toContain('n/a'); // the unmeasured bar
    expect(r.texts).toContain('19016'); // a clipped bar keeps its true value
    expect(r.texts).toContain('3.00');
  });

  it.runIf(HAVE_PYTHON)('bar widths are proportional within a panel; a clipped bar takes the full width', () => {
    const w = pythonRead(svg).rects.map((x) => x.width);
    const area = (CHART.width - 2 * CHART.margin - CHART.panelGap) / 2 - CHART.labelWidth - CHART.valueWidth;
    expect(w[0]).toBeCloseTo(area, 0); // 19016 clipped at 2000
    expect(w[1]! / w[2]!).toBeCloseTo(1469 / 1000, 2);
    expect(w[1]).toBeCloseTo((1469 / 2000) * area, 0);
    expect(w[4]).toBeCloseTo(area, 0); // the largest unclipped bar fills the panel
    expect(w[3]! / w[4]!).toBeCloseTo(0.5, 2);
  });

  it('marks clipped bars (and only those) with a break', () => {
    expect(svg.match(/<path /g)).toHaveLength(1);
    const unclipped = barChartSvg({ ...spec, panels: [{ ...spec.panels[0]!, clipAt: undefined }] });
    expect(unclipped.match(/<path /g)).toBeNull();
  });

  it('helpers: scale, width, escaping', () => {
    expect(panelScale(spec.panels[0]!)).toBe(2000);
    expect(panelScale({ ...spec.panels[0]!, clipAt: 50000 })).toBe(19016);
    expect(panelScale(spec.panels[2]!)).toBe(0);
    expect(barWidth(5, 10, 300)).toBe(150);
    expect(barWidth(20, 10, 300)).toBe(300);
    expect(barWidth(5, 0, 300)).toBe(0);
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });
});
