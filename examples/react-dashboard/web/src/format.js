// Number formats shared by the tiles, the feed and the charts.
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat('en-US', { style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const moneyFormats = new Map();

export const formatInteger = (n) => (Number.isFinite(n) ? integer.format(n) : '—');
export const formatDecimal = (n) => (Number.isFinite(n) ? decimal.format(n) : '—');
export const formatPercent = (n) => (Number.isFinite(n) ? percent.format(n) : '—');

export function formatMoney(n, currency = 'USD') {
  if (!Number.isFinite(n)) return '—';
  let format = moneyFormats.get(currency);
  if (!format) {
    try {
      format = new Intl.NumberFormat('en-US', { style: 'currency', currency, maximumFractionDigits: 2 });
    } catch {
      format = decimal;  // not an ISO 4217 code
    }
    moneyFormats.set(currency, format);
  }
  return format.format(n);
}

export const formatTime = (unixMs) => new Date(unixMs).toLocaleTimeString('en-GB', { hour12: false });
