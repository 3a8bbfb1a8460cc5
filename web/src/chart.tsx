import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  stroke: string;
  /** The legend swatch's CSS class (a class, not a style attribute: the CSP allows no inline style). */
  swatch: string;
  /** Points only (a scatter of single observations) instead of a line. */
  points?: boolean;
}

/** The x axis (seconds) of a chart: the data's span, widened around its middle to 10 minutes. */
export function xRange(x: readonly number[]): [number, number] {
  const lo = Math.min(...x);
  const hi = Math.max(...x);
  return hi - lo < 600 ? [(lo + hi) / 2 - 300, (lo + hi) / 2 + 300] : [lo, hi];
}

/**
 * A uPlot time chart. The canvas is an image to assistive technology (`role="img"` with a
 * summary); the same numbers are in a table beside it. uPlot builds its DOM with
 * `createElement` and CSSOM properties, never markup or `style` attributes, so it runs under
 * the console's CSP without `'unsafe-inline'`.
 */
export function TimeChart({ title, summary, x, ys, series, unit }: { title: string; summary: string; x: number[]; ys: number[][]; series: ChartSeries[]; unit: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || x.length === 0) return;
    const plot = new uPlot(
      {
        width: Math.max(320, Math.min(el.clientWidth || 640, 900)),
        height: 220,
        legend: { show: false },
        cursor: { show: false },
        scales: {
          // A few points close together (or one) would otherwise be stretched over an axis of
          // years: the range is taken from the data, at least ten minutes wide.
          x: { time: true, range: () => xRange(x) },
          y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] },
        },
        axes: [{}, { label: unit }],
        series: [{}, ...series.map((s) => (s.points ? { label: s.label, stroke: s.stroke, width: 0, points: { show: true, size: 6, fill: s.stroke } } : { label: s.label, stroke: s.stroke, width: 2, points: { show: true } }))],
      },
      [x, ...ys] as uPlot.AlignedData,
      el,
    );
    return () => plot.destroy();
  }, [x, ys]);
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`${title}: ${summary}`} data-testid="chart" />
      <figcaption>
        {title}: {summary}
        <ul class="legend">
          {series.map((s) => (
            <li key={s.label}>
              <span class={`swatch ${s.swatch}`} aria-hidden="true" /> {s.label}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
