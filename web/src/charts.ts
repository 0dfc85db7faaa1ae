/** Chart.js, registered with the parts the page uses (bars), so the bundle keeps only those. */
import { BarController, BarElement, CategoryScale, Chart, type ChartDataset, Legend, LinearScale, Tooltip } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

const COLOURS = ['#0969da', '#bf3989', '#1a7f37', '#9a6700', '#8250df', '#cf222e', '#57606a'];

export function barChart(canvas: HTMLCanvasElement, labels: string[], datasets: { label: string; data: (number | null)[] }[], yTitle: string): void {
  Chart.getChart(canvas)?.destroy();
  const sets: ChartDataset<'bar', (number | null)[]>[] = datasets.map((d, i) => ({ ...d, backgroundColor: COLOURS[i % COLOURS.length]! }));
  new Chart<'bar', (number | null)[], string>(canvas, {
    type: 'bar',
    data: { labels, datasets: sets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: yTitle } } },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  });
}
