// Draws the charts from the tables next to them, so every chart shows the numbers of its table.
"use strict";

function drawGainChart() {
  const canvas = document.getElementById("gain-chart");
  const table = document.getElementById("gain-table");
  if (!canvas || !table || typeof Chart === "undefined") return;
  const points = [...table.querySelectorAll("tbody tr[data-model]")].map((row) => ({
    x: Number(row.dataset.direct),
    y: Number(row.dataset.stepwise),
    label: row.dataset.model,
  }));
  new Chart(canvas, {
    type: "scatter",
    data: {
      datasets: [
        { label: "models", data: points, backgroundColor: "#2456a6", pointRadius: 5, clip: false },
        {
          label: "stepwise = direct",
          type: "line",
          data: [{ x: 0, y: 0 }, { x: 100, y: 100 }],
          borderColor: "#9aa4b2",
          borderDash: [6, 4],
          pointRadius: 0,
        },
      ],
    },
    options: {
      animation: false,
      scales: {
        x: { min: 0, max: 100, title: { display: true, text: "direct (%)" } },
        y: { min: 0, max: 100, title: { display: true, text: "stepwise (%)" } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => `${item.raw.label ?? ""}: ${item.raw.x} → ${item.raw.y}`,
          },
        },
      },
    },
  });
}

function drawCategoryChart() {
  const canvas = document.getElementById("category-chart");
  const table = document.getElementById("category-table");
  if (!canvas || !table || typeof Chart === "undefined") return;
  const protocols = [...table.querySelectorAll("thead th[data-protocol]")].map((th) => th.dataset.protocol);
  const rows = [...table.querySelectorAll("tbody tr[data-category]")];
  const colours = { direct: "#2456a6", stepwise: "#d9822b" };
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map((row) => row.dataset.label),
      datasets: protocols.map((protocol) => ({
        label: protocol,
        backgroundColor: colours[protocol] ?? "#666",
        data: rows.map((row) => {
          const value = row.querySelector(`td[data-protocol="${protocol}"]`)?.dataset.value;
          return value === undefined || value === "" ? null : Number(value);
        }),
      })),
    },
    options: {
      animation: false,
      scales: { y: { min: 0, max: 100, title: { display: true, text: "accuracy (%)" } } },
    },
  });
}

document.addEventListener("DOMContentLoaded", () => {
  drawGainChart();
  drawCategoryChart();
});
