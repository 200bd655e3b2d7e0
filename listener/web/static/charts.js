/* listener dashboard: small SVG line charts, no dependencies.
 *
 * Everything is built with createElementNS / createElement and textContent:
 * labels and names are never parsed as HTML.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var HEIGHT = 240;
  var PAD = { left: 48, right: 14, top: 14, bottom: 30 };

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, String(attrs[key]));
    });
    return node;
  }

  function div(className, text) {
    var node = document.createElement("div");
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* Round tick values covering [min, max]. */
  function ticks(min, max, count) {
    if (max === min) {
      max = min + 1;
    }
    var span = max - min;
    var step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = (count / span) * step;
    if (err <= 0.15) step *= 10;
    else if (err <= 0.35) step *= 5;
    else if (err <= 0.75) step *= 2;
    var start = Math.floor(min / step) * step;
    var stop = Math.ceil(max / step) * step;
    var out = [];
    for (var v = start; v <= stop + step / 2; v += step) {
      out.push(Math.round(v / step) * step);
    }
    return out;
  }

  /* Draw a line chart into `container` (emptied first).
   *
   * options: {
   *   labels: [string]            x values (periods)
   *   series: [{name, color, values: [number|null]}]
   *   yMin, yMax: fixed bounds (optional)
   *   yFormat(v), xFormat(label): axis and tooltip text
   *   markers: [{series, index, label, onSelect}]   clickable points (spikes)
   *   title: accessible name of the chart
   *   empty: text shown when there is nothing to draw
   * }
   */
  function lineChart(container, options) {
    container.textContent = "";
    container.classList.add("chart");
    container._chartOptions = options;
    var labels = options.labels || [];
    var series = options.series || [];
    var yFormat = options.yFormat || function (v) { return String(v); };
    var xFormat = options.xFormat || function (v) { return String(v); };
    if (!labels.length || !series.length) {
      container.appendChild(div("chart-empty", options.empty || "Nothing to show for these filters."));
      return;
    }
    var width = Math.max(280, container.clientWidth || 600);
    var plotW = width - PAD.left - PAD.right;
    var plotH = HEIGHT - PAD.top - PAD.bottom;
    var values = [];
    series.forEach(function (s) {
      s.values.forEach(function (v) { if (v !== null && v !== undefined) values.push(v); });
    });
    var min = options.yMin !== undefined ? options.yMin : Math.min(0, Math.min.apply(null, values));
    var max = options.yMax !== undefined ? options.yMax : Math.max.apply(null, values.concat([min + 1]));
    var yTicks = options.yTicks || ticks(min, max, 4);
    min = Math.min(min, yTicks[0]);
    max = Math.max(max, yTicks[yTicks.length - 1]);
    var n = labels.length;
    function x(i) { return PAD.left + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1)); }
    function y(v) { return PAD.top + plotH - ((v - min) / (max - min || 1)) * plotH; }

    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + HEIGHT,
      width: width,
      height: HEIGHT,
      role: "img",
      class: "chart-svg",
    });
    var title = svg("title");
    title.textContent = options.title || "chart";
    root.appendChild(title);

    var grid = svg("g", { class: "grid" });
    yTicks.forEach(function (t) {
      grid.appendChild(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y(t), y2: y(t) }));
      var label = svg("text", { x: PAD.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" });
      label.textContent = yFormat(t);
      grid.appendChild(label);
    });
    var every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 90))));
    for (var i = 0; i < n; i += every) {
      var xl = svg("text", { x: x(i), y: HEIGHT - 8, "text-anchor": "middle", class: "tick" });
      xl.textContent = xFormat(labels[i]);
      grid.appendChild(xl);
    }
    root.appendChild(grid);

    series.forEach(function (s, index) {
      var d = "";
      var pen = false;
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      var path = svg("path", { d: d || "M0 0", class: "line", stroke: s.color, "data-series": index });
      var name = svg("title");
      name.textContent = s.name;
      path.appendChild(name);
      root.appendChild(path);
      if (n <= 62) {
        s.values.forEach(function (v, i) {
          if (v === null || v === undefined) return;
          root.appendChild(svg("circle", { cx: x(i), cy: y(v), r: 2.5, fill: s.color, class: "dot" }));
        });
      }
    });

    var guide = svg("line", { class: "guide", y1: PAD.top, y2: PAD.top + plotH, x1: -10, x2: -10 });
    root.appendChild(guide);
    var overlay = svg("rect", {
      x: PAD.left, y: PAD.top, width: plotW, height: plotH, class: "overlay", fill: "transparent",
    });
    root.appendChild(overlay);

    var tip = div("chart-tip");
    tip.hidden = true;
    function show(i) {
      guide.setAttribute("x1", x(i));
      guide.setAttribute("x2", x(i));
      tip.textContent = "";
      tip.appendChild(div("tip-head", xFormat(labels[i], true)));
      series.forEach(function (s) {
        var row = div("tip-row");
        var swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = s.color;
        row.appendChild(swatch);
        var v = s.values[i];
        row.appendChild(document.createTextNode(s.name + ": " + (v === null || v === undefined ? "–" : yFormat(v))));
        tip.appendChild(row);
      });
      tip.hidden = false;
      var left = (x(i) / width) * container.clientWidth;
      tip.style.left = Math.min(Math.max(0, left + 12), Math.max(0, container.clientWidth - 190)) + "px";
      tip.style.top = PAD.top + "px";
    }
    overlay.addEventListener("mousemove", function (event) {
      var box = root.getBoundingClientRect();
      var px = ((event.clientX - box.left) / box.width) * width;
      var i = n === 1 ? 0 : Math.round(((px - PAD.left) / plotW) * (n - 1));
      show(Math.max(0, Math.min(n - 1, i)));
    });
    overlay.addEventListener("mouseleave", function () {
      tip.hidden = true;
      guide.setAttribute("x1", -10);
      guide.setAttribute("x2", -10);
    });

    (options.markers || []).forEach(function (m) {
      var s = series[m.series];
      if (!s) return;
      var v = s.values[m.index];
      if (v === null || v === undefined) return;
      var marker = svg("circle", {
        cx: x(m.index), cy: y(v), r: 7, class: "marker", tabindex: 0, role: "button",
        "aria-label": m.label, "data-period": labels[m.index], "data-brand": s.name,
      });
      var t = svg("title");
      t.textContent = m.label;
      marker.appendChild(t);
      function select(event) {
        if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        if (m.onSelect) m.onSelect();
      }
      marker.addEventListener("click", select);
      marker.addEventListener("keydown", select);
      root.appendChild(marker);
    });

    container.appendChild(root);
    container.appendChild(tip);

    var legend = div("legend");
    series.forEach(function (s) {
      var item = document.createElement("span");
      item.className = "legend-item";
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.legend || s.name));
      legend.appendChild(item);
    });
    container.appendChild(legend);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      document.querySelectorAll(".chart").forEach(function (node) {
        if (node._chartOptions) lineChart(node, node._chartOptions);
      });
    }, 150);
  });

  window.ListenerCharts = { lineChart: lineChart, ticks: ticks };
})();
