// The Freshet dashboard's script (ops/dashboard/index.html): polls /dashboard/data
// (the JSON layout is documented in ops/dashboard.h) and draws it with Chart.js 3.
// After every render each card gets data-points (non-null values drawn),
// data-series ("label:points,..." per dataset, so a test can tell which lines have
// data) and data-state (ok | empty); <body> gets data-polls and data-error.
'use strict';

const POLL_MS = 2000;
const PALETTE = ['#0f62fe', '#da1e28', '#198038', '#8a3ffc', '#ff832b', '#1192e8', '#9f1853', '#005d5d',
                 '#b28600', '#570408', '#6929c4', '#002d9c'];
const STAGE_COLORS = {joined: '#0f62fe', trained: '#198038', published: '#8a3ffc', applied: '#ff832b',
                      served: '#da1e28'};
const charts = {};
let polls = 0;

function color(i) { return PALETTE[i % PALETTE.length]; }

function makeChart(id, type, extra) {
  const card = document.getElementById(id);
  const options = Object.assign({
    animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
    interaction: {mode: 'nearest', intersect: false},
    plugins: {legend: {labels: {boxWidth: 12, font: {size: 11}}}},
    elements: {point: {radius: 0}, line: {borderWidth: 1.5}},
  }, extra || {});
  charts[id] = new Chart(card.querySelector('canvas'), {type: type, data: {labels: [], datasets: []}, options: options});
}

function countPoints(datasets) {
  let n = 0;
  for (const d of datasets) for (const v of d.data) if (v !== null && v !== undefined) n++;
  return n;
}

// data-series: "label:points,..." per dataset.
function seriesPoints(datasets) {
  return datasets.map(d => d.label + ':' + countPoints([d])).join(',');
}

function render(id, labels, datasets) {
  const chart = charts[id];
  chart.data.labels = labels;
  chart.data.datasets = datasets;
  chart.update();
  const card = document.getElementById(id);
  const n = countPoints(datasets);
  card.dataset.points = String(n);
  card.dataset.series = seriesPoints(datasets);
  card.dataset.state = n > 0 ? 'ok' : 'empty';
}

function series(data, prefix) {
  return Object.keys(data.series).filter(k => k.startsWith(prefix)).sort();
}

function drawFreshness(data, labels) {
  const sets = [];
  const missing = [];
  for (const stage of data.stages) {
    const p50 = data.series['freshness.' + stage + '.p50'];
    const p99 = data.series['freshness.' + stage + '.p99'];
    if (!p50 || countPoints([{data: p50}]) === 0) { missing.push(stage); }
    if (!p50) continue;
    const c = STAGE_COLORS[stage] || '#555';
    sets.push({label: stage + ' p50', data: p50, borderColor: c, backgroundColor: c});
    sets.push({label: stage + ' p99', data: p99, borderColor: c, backgroundColor: c, borderDash: [5, 4]});
  }
  render('chart-freshness', labels, sets);
  document.getElementById('freshness-note').textContent =
      'over the last ' + (data.window_ms / 1000) + ' s' + (missing.length ? '; no data yet: ' + missing.join(', ') : '');
}

function drawLines(id, data, labels, prefix, names) {
  const keys = series(data, prefix);
  render(id, labels, keys.map((k, i) => ({
    label: (names && names[k.slice(prefix.length)]) || k.slice(prefix.length),
    data: data.series[k], borderColor: color(i), backgroundColor: color(i), stepped: prefix === 'version.'})));
}

function drawVersions(data, labels) {
  drawLines('chart-versions', data, labels, 'version.');
  const chart = charts['chart-versions'];
  const published = data.series['version.published'] || [];
  for (const kind of ['blocked', 'rollback']) {
    const marks = labels.map(() => null);
    for (const e of data.events.filter(e => e.kind === kind)) {
      let i = data.t.findIndex(t => t >= e.t);
      if (i < 0) i = data.t.length - 1;
      if (i >= 0) marks[i] = published[i] !== null && published[i] !== undefined ? published[i] : 0;
    }
    if (marks.some(v => v !== null)) {
      chart.data.datasets.push({label: kind, data: marks, showLine: false, pointRadius: 6,
                                pointStyle: kind === 'blocked' ? 'crossRot' : 'triangle',
                                borderColor: kind === 'blocked' ? '#da1e28' : '#ff832b'});
    }
  }
  chart.update();
  document.getElementById('chart-versions').dataset.series = seriesPoints(chart.data.datasets);  // with the marks
  const list = document.getElementById('events');
  list.innerHTML = '';
  for (const e of data.events.slice(-10).reverse()) {
    const li = document.createElement('li');
    li.textContent = new Date(e.t).toLocaleTimeString() + ' ' + e.kind + ' ' + e.detail +
                     (e.count > 1 ? ' x' + e.count : '');
    list.appendChild(li);
  }
}

function drawExperts(data) {
  const zs = data.experts.zero_share;
  const experts = Object.keys(zs).sort();
  render('chart-zero-share', experts, [{label: 'zero-activation share', data: experts.map(e => zs[e]),
                                        backgroundColor: experts.map(e => zs[e] > 0.9 ? '#da1e28' : '#0f62fe')}]);
  const gates = data.experts.gates;
  const gateNames = Object.keys(gates).sort();
  const gateExperts = [...new Set(gateNames.flatMap(g => Object.keys(gates[g])))].sort();
  render('chart-gates', gateNames, gateExperts.map((e, i) => ({
    label: e, data: gateNames.map(g => gates[g][e] === undefined ? null : gates[g][e]), backgroundColor: color(i)})));
}

function drawHeader(data) {
  const sources = document.getElementById('sources');
  sources.innerHTML = '';
  for (const s of data.sources) {
    const span = document.createElement('span');
    span.className = s.ok ? 'ok' : 'down';
    span.textContent = s.name + (s.address ? ' ' + s.address : '') + (s.ok ? ' up' : ' unreachable');
    if (!s.ok) span.title = s.error;
    sources.appendChild(span);
  }
  document.getElementById('summary').textContent =
      data.t.length + ' points, one every ' + (data.interval_ms / 1000) + ' s';
}

function draw(data) {
  const labels = data.t.map(t => new Date(t).toLocaleTimeString());
  drawHeader(data);
  drawFreshness(data, labels);
  drawLines('chart-throughput', data, labels, 'rate.',
            {events: 'events consumed (ingest)', samples: 'samples joined (ingest)', trained: 'samples trained'});
  drawLines('chart-lag', data, labels, 'lag.');
  drawLines('chart-auc', data, labels, 'auc.');
  drawVersions(data, labels);
  drawExperts(data);
}

function showError(message) {
  const banner = document.getElementById('banner');
  banner.style.display = message ? 'block' : 'none';
  banner.textContent = message;
  document.body.dataset.error = message;
}

async function poll() {
  try {
    const response = await fetch('/dashboard/data', {cache: 'no-store'});
    if (!response.ok) throw new Error('/dashboard/data answered ' + response.status);
    draw(await response.json());
    showError('');
  } catch (e) {
    showError('dashboard data unavailable: ' + e.message + ' (is the learner running?)');
  }
  document.body.dataset.polls = String(++polls);
  setTimeout(poll, POLL_MS);
}

function start() {
  if (typeof Chart === 'undefined') {
    showError('Chart.js did not load from /dashboard/chart.js (install Debian libjs-chart.js: ops/install-deps.sh)');
    return;
  }
  const time = {x: {ticks: {maxTicksLimit: 8, font: {size: 10}}}};
  makeChart('chart-freshness', 'line', {scales: Object.assign({y: {type: 'logarithmic', title: {display: true, text: 's'}}}, time)});
  makeChart('chart-throughput', 'line', {scales: Object.assign({y: {beginAtZero: true}}, time)});
  makeChart('chart-lag', 'line', {scales: Object.assign({y: {beginAtZero: true}}, time)});
  makeChart('chart-auc', 'line', {scales: Object.assign({y: {suggestedMin: 0.5, suggestedMax: 1}}, time)});
  makeChart('chart-versions', 'line', {scales: time});
  makeChart('chart-zero-share', 'bar', {scales: {y: {min: 0, max: 1}}, plugins: {legend: {display: false}}});
  makeChart('chart-gates', 'bar', {scales: {x: {stacked: true}, y: {stacked: true, min: 0, max: 1}},
                                   plugins: {legend: {display: false}}});
  poll();
}

start();
