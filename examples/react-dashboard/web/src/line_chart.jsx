// A small inline-SVG line chart: one path per series over the last
// `capacity` points, newest at the right edge, y from 0 to a rounded maximum.
// A null value (a window without events has no quantiles) breaks its line.
const WIDTH = 600;
const HEIGHT = 180;
const PAD = { left: 44, right: 8, top: 10, bottom: 18 };

// 1, 2 or 5 times a power of ten, at least `value`: gridline labels a reader can add up.
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function linePath(values, capacity, yMax) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const offset = capacity - values.length;  // right-aligned: the newest point at the right edge
  let path = '';
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null || value === undefined || !Number.isFinite(value)) {
      drawing = false;
      return;
    }
    const x = PAD.left + (capacity > 1 ? ((offset + i) / (capacity - 1)) * plotWidth : plotWidth);
    const y = PAD.top + plotHeight - (Math.min(value, yMax) / yMax) * plotHeight;
    path += `${drawing ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`;
    drawing = true;
  });
  return path;
}

export function LineChart({ series, capacity, label, formatTick = String }) {
  const points = series.reduce((most, s) => Math.max(most, s.values.length), 0);
  const yMax = niceCeiling(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))));
  const gridlines = [0, 0.5, 1].map((fraction) => ({
    fraction,
    y: PAD.top + (HEIGHT - PAD.top - PAD.bottom) * (1 - fraction),
    text: formatTick(yMax * fraction),
  }));
  return (
    <figure className="chart" data-points={points}>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label}>
        {gridlines.map(({ fraction, y, text }) => (
          <g key={fraction} className="gridline">
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y} y2={y} />
            <text x={PAD.left - 6} y={y + 4} textAnchor="end">{text}</text>
          </g>
        ))}
        {series.map((s) => (
          <path key={s.label} className={`line ${s.className}`} d={linePath(s.values, capacity, yMax)} />
        ))}
      </svg>
      <figcaption>
        {series.map((s) => <span key={s.label} className={`legend ${s.className}`}>{s.label}</span>)}
      </figcaption>
    </figure>
  );
}
