(function () {
  var done = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var box = svg.getBBox(), rect = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && rect.width > 0) {
      svg.setAttribute("data-rendered", "true");
      done += 1;
    }
  });
  document.documentElement.setAttribute("data-charts-rendered", String(done));
})();
