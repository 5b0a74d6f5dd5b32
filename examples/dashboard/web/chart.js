// A time-series line chart on a <canvas>: the last `windowMs` of one series,
// drawn at the device's pixel ratio. Points older than the window are dropped
// as new ones arrive, so memory stays flat however long the page is open.

export class TimeSeriesChart {
  constructor(canvas, { color = '#4f9cf9', windowMs = 120000, format = (v) => String(v) } = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d');
    this.color = color;
    this.windowMs = windowMs;
    this.format = format;
    this.points = [];  // {t, v}, sorted by t
    this.dirty = true;
    new ResizeObserver(() => { this.dirty = true; }).observe(canvas);
  }

  add(t, v) {
    if (typeof t !== 'number' || typeof v !== 'number') return;
    const last = this.points[this.points.length - 1];
    if (last && t < last.t) {
      // Recovered publications may arrive after newer live ones: keep order.
      const at = this.points.findIndex((p) => p.t > t);
      this.points.splice(at, 0, { t, v });
    } else {
      this.points.push({ t, v });
    }
    const oldest = this.points[this.points.length - 1].t - this.windowMs - 5000;
    let drop = 0;
    while (drop < this.points.length && this.points[drop].t < oldest) drop++;
    if (drop) this.points.splice(0, drop);
    this.dirty = true;
  }

  clear() {
    this.points = [];
    this.dirty = true;
  }

  // Draws if anything changed; `now` (ms) is the right edge of the chart.
  draw(now) {
    if (!this.dirty) return;
    this.dirty = false;
    const { canvas, context: g } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);

    const pad = { left: 56, right: 12, top: 10, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const start = now - this.windowMs;
    const visible = this.points.filter((p) => p.t >= start - 1000);
    const hasData = visible.length >= 2;
    const max = hasData ? 4 * niceStep((Math.max(1e-9, ...visible.map((p) => p.v)) * 1.1) / 4) : 1;
    const x = (t) => pad.left + ((t - start) / this.windowMs) * plotW;
    const y = (v) => pad.top + plotH - (v / max) * plotH;

    // Grid and axes.
    g.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
    g.fillStyle = '#7d8799';
    g.strokeStyle = 'rgba(255,255,255,0.06)';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const value = (max * i) / 4;
      const yy = Math.round(y(value)) + 0.5;
      g.beginPath();
      g.moveTo(pad.left, yy);
      g.lineTo(width - pad.right, yy);
      g.stroke();
      if (hasData) g.fillText(this.format(value), pad.left - 8, yy);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let s = 0; s <= this.windowMs / 1000; s += 30) {
      const xx = x(now - s * 1000);
      g.fillText(s === 0 ? 'now' : `-${s}s`, Math.min(Math.max(xx, pad.left + 12), width - pad.right - 12),
                 height - pad.bottom + 6);
    }

    if (!hasData) {
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText('waiting for data…', pad.left + plotW / 2, pad.top + plotH / 2);
      return;
    }

    // The series: an area under a line, clipped to the plot.
    g.save();
    g.beginPath();
    g.rect(pad.left, pad.top, plotW, plotH + 1);
    g.clip();
    const gradient = g.createLinearGradient(0, pad.top, 0, pad.top + plotH);
    gradient.addColorStop(0, hexToRgba(this.color, 0.35));
    gradient.addColorStop(1, hexToRgba(this.color, 0));
    g.beginPath();
    g.moveTo(x(visible[0].t), y(0));
    for (const p of visible) g.lineTo(x(p.t), y(p.v));
    g.lineTo(x(visible[visible.length - 1].t), y(0));
    g.closePath();
    g.fillStyle = gradient;
    g.fill();

    g.beginPath();
    visible.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
    g.strokeStyle = this.color;
    g.lineWidth = 2;
    g.lineJoin = 'round';
    g.stroke();
    g.restore();

    const last = visible[visible.length - 1];
    g.beginPath();
    g.arc(x(last.t), y(last.v), 3.5, 0, Math.PI * 2);
    g.fillStyle = this.color;
    g.fill();
  }
}

// The smallest round grid step (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power
// of ten) of at least `v`, so the four grid lines carry round labels.
function niceStep(v) {
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]) if (step * power >= v) return step * power;
  return 10 * power;
}

function hexToRgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}
