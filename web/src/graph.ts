/** cytoscape with the dagre layout: the one graph engine of the page (rules graph and trace paths). */
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';

cytoscape.use(dagre);

export type Graph = cytoscape.Core;

const STYLE: cytoscape.StylesheetJson = [
  { selector: 'node', style: { shape: 'round-rectangle', 'background-color': '#ddf4ff', 'border-width': 1, 'border-color': '#54aeff', label: 'data(label)', 'text-valign': 'center', 'text-halign': 'center', 'font-size': 10, 'text-wrap': 'wrap', width: 'data(w)', height: 'data(h)' } },
  { selector: 'node[?base]', style: { 'background-color': '#fff8c5', 'border-color': '#d4a72c' } },
  { selector: 'node[?more]', style: { 'background-color': '#f6f8fa', 'border-style': 'dashed', color: '#57606a' } },
  { selector: 'node[?endpoint]', style: { 'background-color': '#dafbe1', 'border-color': '#4ac26b', shape: 'ellipse' } },
  { selector: 'node[?verdict]', style: { 'background-color': '#ffebe9', 'border-color': '#cf222e' } },
  { selector: 'node.hit', style: { 'border-width': 3, 'border-color': '#cf222e' } },
  { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#0969da' } },
  { selector: 'edge', style: { width: 1.5, 'line-color': '#8c959f', 'target-arrow-color': '#8c959f', 'target-arrow-shape': 'triangle', 'curve-style': 'bezier', label: 'data(label)', 'font-size': 9 } },
  { selector: 'edge[kind = "goto"]', style: { 'line-style': 'dashed' } },
  { selector: 'edge.hit', style: { width: 3, 'line-color': '#cf222e', 'target-arrow-color': '#cf222e' } },
];

export function createGraph(container: HTMLElement): Graph {
  return cytoscape({ container, style: STYLE, wheelSensitivity: 0.3, minZoom: 0.05, maxZoom: 3 });
}

/** Sizes each node for its label before dagre places it (dagre needs the sizes; labels have one or two lines). */
function sizeNodes(cy: Graph): void {
  cy.nodes().forEach((node) => {
    const lines = String(node.data('label') ?? '').split('\n');
    node.data({ w: Math.max(...lines.map((l) => l.length)) * 6 + 16, h: lines.length * 13 + 10 });
  });
}

export function layout(cy: Graph): void {
  sizeNodes(cy);
  cy.layout({ name: 'dagre', rankDir: 'LR', nodeSep: 8, rankSep: 40, animate: false } as cytoscape.LayoutOptions).run();
}
