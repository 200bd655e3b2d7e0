/* listener dashboard.
 *
 * Plain JavaScript, no build step, no outside resources. Mention titles, texts,
 * author names and URLs come from the internet and are hostile by default: they
 * are only ever put into the page with textContent / createTextNode, and links
 * are only made for http(s) URLs. Nothing here turns a string into HTML.
 */
(function () {
  "use strict";

  var PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#0891b2", "#db2777", "#65a30d", "#78716c"];
  var PAGE_SIZE = 25;
  var TOKEN_KEY = "listener-api-token";
  var TZ = (function () {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  })();

  var project = null;
  var colors = {};
  var cursor = null;
  var shown = 0;
  var generation = 0; // bumps on every refresh: late answers of older requests are dropped
  var crawlTimer = null;

  function $(id) {
    return document.getElementById(id);
  }

  /* -- DOM helpers: text only ----------------------------------------------------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /* An absolute http(s) URL, else null: never a javascript:, data: or relative link. */
  function safeHref(value) {
    if (typeof value !== "string" || !value) return null;
    var url;
    try {
      url = new URL(value);
    } catch (e) {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return url.href;
  }

  /* A link out for an internet URL, or plain text when the URL is not http(s). */
  function linkOut(url, text, className) {
    var href = safeHref(url);
    if (!href) return el("span", className, text);
    var a = el("a", className, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    return a;
  }

  function appendSegments(node, segments) {
    (segments || []).forEach(function (segment) {
      if (segment.match) {
        node.appendChild(el("mark", null, segment.text));
      } else {
        node.appendChild(document.createTextNode(segment.text));
      }
    });
    return node;
  }

  function fmtInt(value) {
    if (value === null || value === undefined) return "–";
    return Number(value).toLocaleString("en-US");
  }

  function fmtCompact(value) {
    if (value === null || value === undefined) return "–";
    var n = Number(value);
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return Math.round(n / 1e3) + "k";
    if (Math.abs(n) >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return String(n);
  }

  function fmtPct(value, digits) {
    if (value === null || value === undefined || isNaN(value)) return "–";
    return (value * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  function fmtSigned(value) {
    if (value === null || value === undefined || isNaN(value)) return "–";
    return (value > 0 ? "+" : "") + value.toFixed(2);
  }

  function fmtDateTime(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso || "");
    return date.toLocaleString("en-GB", {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
  }

  function fmtPeriod(label, long) {
    if (!label) return "";
    var date = new Date(label.length === 10 ? label + "T00:00:00Z" : label);
    if (isNaN(date.getTime())) return label;
    var options = label.length === 10
      ? { month: "short", day: "numeric", timeZone: "UTC" }
      : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    if (long) options.year = "numeric";
    return date.toLocaleString("en-GB", options);
  }

  /* yyyy-mm-dd of a Date in local time. */
  function isoDay(date) {
    var m = String(date.getMonth() + 1).padStart(2, "0");
    var d = String(date.getDate()).padStart(2, "0");
    return date.getFullYear() + "-" + m + "-" + d;
  }

  function addDays(day, days) {
    var parts = day.split("-").map(Number);
    var date = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2] + days));
    return date.toISOString().slice(0, 10);
  }

  function daysBetween(a, b) {
    return Math.round((Date.parse(b + "T00:00:00Z") - Date.parse(a + "T00:00:00Z")) / 86400000);
  }

  /* -- API ------------------------------------------------------------------------- */

  function AuthNeeded() {
    this.message = "authentication needed";
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  function query(params) {
    var search = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value === null || value === undefined || value === "") return;
      if (Array.isArray(value)) {
        value.forEach(function (v) { search.append(key, v); });
      } else {
        search.append(key, String(value));
      }
    });
    var text = search.toString();
    return text ? "?" + text : "";
  }

  function api(path, params, init) {
    var options = init || {};
    var headers = { Accept: "application/json" };
    var stored = token();
    if (stored) headers.Authorization = "Bearer " + stored;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch("/api/" + path + query(params || {}), {
      method: options.method || "GET",
      headers: headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      if (response.status === 401) {
        showAuth(stored ? "That token was not accepted." : "");
        throw new AuthNeeded();
      }
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var detail = body && body.detail;
          if (Array.isArray(detail)) {
            detail = detail.map(function (d) {
              return (d.loc ? d.loc.slice(1).join(".") + ": " : "") + d.msg;
            }).join("; ");
          }
          var error = new Error(detail || response.status + " " + response.statusText);
          error.param = body && body.param;
          throw error;
        }
        return body;
      });
    });
  }

  /* -- auth -------------------------------------------------------------------------- */

  function showAuth(message) {
    $("auth").hidden = false;
    $("auth-error").textContent = message || "";
    $("auth-token").focus();
  }

  $("auth-form").addEventListener("submit", function (event) {
    event.preventDefault();
    try {
      sessionStorage.setItem(TOKEN_KEY, $("auth-token").value.trim());
    } catch (e) {
      /* storage disabled: the token lives only in this page */
    }
    $("auth").hidden = true;
    $("auth-token").value = "";
    start();
  });

  $("signout").addEventListener("click", function () {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* nothing stored */ }
    location.reload();
  });

  /* -- state: the filters, kept in the address (#...) so a view can be bookmarked -------- */

  function readForm() {
    var brands = [];
    document.querySelectorAll("#brand-filter input[type=checkbox]").forEach(function (box) {
      if (box.checked) brands.push(box.value);
    });
    return {
      mode: $("mode").value,
      q: $("q").value.trim(),
      brand: brands,
      source: $("source").value,
      kind: $("kind").value,
      sentiment: $("sentiment").value,
      language: $("language").value,
      since: $("since").value,
      until: $("until").value,
      interval: $("interval").value,
      sort: $("sort").value,
    };
  }

  function writeHash(state) {
    var params = new URLSearchParams();
    Object.keys(state).forEach(function (key) {
      var value = state[key];
      if (Array.isArray(value)) value.forEach(function (v) { params.append(key, v); });
      else if (value) params.set(key, value);
    });
    history.replaceState(null, "", "#" + params.toString());
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    var state = {};
    params.forEach(function (value, key) {
      if (key === "brand") {
        (state.brand = state.brand || []).push(value);
      } else {
        state[key] = value;
      }
    });
    return state;
  }

  function setSelect(select, value) {
    if (value === undefined) return;
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
    if (known) select.value = value;
  }

  function applyState(state) {
    setSelect($("mode"), state.mode);
    if (state.q !== undefined) $("q").value = state.q;
    document.querySelectorAll("#brand-filter input[type=checkbox]").forEach(function (box) {
      box.checked = (state.brand || []).indexOf(box.value) !== -1;
    });
    ["source", "kind", "sentiment", "language", "interval", "sort"].forEach(function (key) {
      setSelect($(key), state[key]);
    });
    if (state.since !== undefined) $("since").value = state.since;
    if (state.until !== undefined) $("until").value = state.until;
    updatePlaceholder();
  }

  function updatePlaceholder() {
    $("q").placeholder = $("mode").value === "rule"
      ? "Brand rule — e.g. acme NEAR/5 (price OR cost)"
      : "Search mentions — e.g. support, \"price cut\", -spam";
  }

  /* Periods for share of voice and sentiment: coarse enough for shares to mean something. */
  function intervalFor(state) {
    if (state.interval && state.interval !== "auto") return state.interval;
    if (!state.since || !state.until) return "week";
    var days = daysBetween(state.since, state.until) + 1;
    if (days <= 31) return "day";
    if (days <= 400) return "week";
    return "month";
  }

  /* Periods for the volume chart and its spikes: as fine as the range allows. */
  function volumeIntervalFor(state) {
    if (state.interval && state.interval !== "auto") return state.interval;
    if (!state.since || !state.until) return "day";
    var days = daysBetween(state.since, state.until) + 1;
    if (days <= 120) return "day";
    if (days <= 1100) return "week";
    return "month";
  }

  /* Parameters every analytics request takes. */
  function scopeParams(state) {
    return {
      since: state.since || "all", // no "From" day: everything stored (not the API's 30 days)
      until: state.until ? addDays(state.until, 1) : null, // the "To" day is included
      tz: TZ,
      brand: state.brand,
      source: state.source || null,
      kind: state.kind || null,
      language: state.language || null,
    };
  }

  function brandNames(state) {
    return state.brand.length ? state.brand : project.brands.map(function (b) { return b.name; });
  }

  /* -- cards ------------------------------------------------------------------------- */

  function busy(id, on) {
    var card = $(id);
    if (card) card.classList.toggle("loading", on);
  }

  function cardError(node, error) {
    if (error instanceof AuthNeeded) return;
    clear(node).appendChild(el("p", "error", "Could not load: " + (error.message || error)));
  }

  function loadCard(cardId, promise, render, errorTarget) {
    var mine = generation;
    busy(cardId, true);
    return promise.then(function (data) {
      if (mine === generation) render(data);
    }).catch(function (error) {
      if (mine === generation) cardError(errorTarget || $(cardId), error);
    }).then(function () {
      if (mine === generation) busy(cardId, false);
    });
  }

  /* Summary tiles per brand: mentions, share of voice, net sentiment. */
  function renderKpis(sov, sentiment, names) {
    var node = clear($("kpis"));
    var totals = {};
    names.forEach(function (name) {
      totals[name] = { mentions: 0, value: 0, total: 0, positive: 0, negative: 0 };
    });
    var periodTotals = {};
    sov.rows.forEach(function (row) {
      if (!totals[row.brand]) return;
      totals[row.brand].mentions += row.mentions;
      totals[row.brand].value += row.value;
      periodTotals[row.period] = row.total;
    });
    var grand = Object.keys(periodTotals).reduce(function (a, k) { return a + periodTotals[k]; }, 0);
    sentiment.rows.forEach(function (row) {
      if (!totals[row.brand]) return;
      totals[row.brand].positive += row.positive;
      totals[row.brand].negative += row.negative;
    });
    names.forEach(function (name) {
      var t = totals[name];
      var tile = el("div", "kpi");
      tile.style.borderTopColor = colors[name];
      tile.appendChild(el("div", "kpi-brand", name));
      tile.appendChild(el("div", "kpi-value", fmtInt(t.mentions)));
      tile.appendChild(el("div", "kpi-label", "mentions"));
      var row = el("div", "kpi-row");
      row.appendChild(el("span", null, "Share " + fmtPct(grand ? t.value / grand : 0)));
      var net = t.mentions ? (t.positive - t.negative) / t.mentions : 0;
      row.appendChild(el("span", net > 0.05 ? "pos" : net < -0.05 ? "neg" : "neu", "Net " + fmtSigned(net)));
      tile.appendChild(row);
      node.appendChild(tile);
    });
  }

  function seriesBy(rows, names, value) {
    var periods = [];
    var seen = {};
    rows.forEach(function (row) {
      if (!seen[row.period]) {
        seen[row.period] = true;
        periods.push(row.period);
      }
    });
    var index = {};
    periods.forEach(function (p, i) { index[p] = i; });
    var series = names.map(function (name) {
      var values = periods.map(function () { return null; });
      return { name: name, color: colors[name], values: values };
    });
    var byName = {};
    series.forEach(function (s) { byName[s.name] = s; });
    rows.forEach(function (row) {
      var s = byName[row.brand];
      if (s) s.values[index[row.period]] = value(row);
    });
    return { labels: periods, series: series };
  }

  function renderSov(data, names) {
    var chart = seriesBy(data.rows, names, function (row) { return row.total ? row.share : null; });
    var overall = {};
    var grand = 0;
    var seen = {};
    data.rows.forEach(function (row) {
      overall[row.brand] = (overall[row.brand] || 0) + row.value;
      if (!seen[row.period]) {
        seen[row.period] = true;
        grand += row.total;
      }
    });
    chart.series.forEach(function (s) {
      s.legend = s.name + " " + fmtPct(grand ? (overall[s.name] || 0) / grand : 0);
    });
    $("sov-note").textContent = "share of mentions per " + data.interval;
    ListenerCharts.lineChart($("sov-chart"), {
      labels: chart.labels,
      series: chart.series,
      yMin: 0,
      yMax: 1,
      yTicks: [0, 0.25, 0.5, 0.75, 1],
      yFormat: function (v) { return fmtPct(v, 0); },
      xFormat: fmtPeriod,
      title: "Share of voice per " + data.interval,
      empty: "No mentions in this range.",
    });
  }

  function renderSentiment(data, names) {
    var chart = seriesBy(data.rows, names, function (row) {
      return row.mentions ? row.net_sentiment : null;
    });
    ListenerCharts.lineChart($("sentiment-chart"), {
      labels: chart.labels,
      series: chart.series,
      yMin: -1,
      yMax: 1,
      yTicks: [-1, -0.5, 0, 0.5, 1],
      yFormat: function (v) { return fmtSigned(v); },
      xFormat: fmtPeriod,
      title: "Net sentiment per " + data.interval,
      empty: "No mentions in this range.",
    });
    var bars = clear($("sentiment-bars"));
    names.forEach(function (name) {
      var t = { positive: 0, neutral: 0, negative: 0, unknown: 0, mentions: 0 };
      data.rows.forEach(function (row) {
        if (row.brand !== name) return;
        t.positive += row.positive;
        t.neutral += row.neutral;
        t.negative += row.negative;
        t.unknown += row.unknown;
        t.mentions += row.mentions;
      });
      var line = el("div", "sentiment-line");
      var label = el("span", "sentiment-name", name);
      label.style.color = colors[name];
      line.appendChild(label);
      var bar = el("div", "stacked");
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", name + ": " + t.positive + " positive, " + t.neutral +
        " neutral, " + t.negative + " negative");
      var all = t.positive + t.neutral + t.negative + t.unknown;
      [["positive", "pos"], ["neutral", "neu"], ["negative", "neg"], ["unknown", "unk"]].forEach(function (part) {
        var count = t[part[0]];
        if (!count) return;
        var seg = el("span", "seg " + part[1], count >= all * 0.08 ? String(count) : "");
        seg.style.width = ((count / all) * 100).toFixed(2) + "%";
        seg.title = part[0] + ": " + count + " (" + fmtPct(count / all) + ")";
        bar.appendChild(seg);
      });
      if (!all) bar.appendChild(el("span", "seg empty", "no mentions"));
      line.appendChild(bar);
      var net = t.mentions ? (t.positive - t.negative) / t.mentions : 0;
      line.appendChild(el("span", "sentiment-net " + (net > 0.05 ? "pos" : net < -0.05 ? "neg" : "neu"), fmtSigned(net)));
      bars.appendChild(line);
    });
    var legend = el("div", "legend small");
    [["pos", "positive"], ["neu", "neutral"], ["neg", "negative"], ["unk", "unknown"]].forEach(function (p) {
      var item = el("span", "legend-item");
      item.appendChild(el("span", "swatch " + p[0]));
      item.appendChild(document.createTextNode(p[1]));
      legend.appendChild(item);
    });
    bars.appendChild(legend);
  }

  function renderSpikes(data, names) {
    var chart = seriesBy(data.series, names, function (point) { return point.count; });
    var seriesIndex = {};
    chart.series.forEach(function (s, i) { seriesIndex[s.name] = i; });
    var labelIndex = {};
    chart.labels.forEach(function (label, i) { labelIndex[label] = i; });
    var list = clear($("spike-list"));
    var detail = $("spike-detail");
    detail.hidden = true;
    var markers = [];
    data.spikes.forEach(function (spike, i) {
      var text = spike.brand + " · " + fmtPeriod(spike.period, true) + ": " + spike.count +
        " mentions (usual " + spike.mean.toFixed(1) + ", threshold " + spike.threshold.toFixed(1) + ")";
      var select = function () { showSpike(spike, i); };
      if (labelIndex[spike.period] !== undefined && seriesIndex[spike.brand] !== undefined) {
        markers.push({ series: seriesIndex[spike.brand], index: labelIndex[spike.period], label: "Spike: " + text, onSelect: select });
      }
      var button = el("button", "spike-chip", "▲ " + spike.brand + " " + fmtPeriod(spike.period) + " (" + spike.count + ")");
      button.type = "button";
      button.title = text;
      button.style.borderColor = colors[spike.brand] || "#999";
      button.addEventListener("click", select);
      list.appendChild(button);
    });
    if (!data.spikes.length) {
      list.appendChild(el("span", "muted", "No spikes: " + data.formula + "."));
    }
    ListenerCharts.lineChart($("volume-chart"), {
      labels: chart.labels,
      series: chart.series,
      yMin: 0,
      yFormat: function (v) { return fmtInt(v); },
      xFormat: fmtPeriod,
      markers: markers,
      title: "Mentions per " + data.interval + " with spikes",
      empty: "No mentions in this range.",
    });
  }

  function showSpike(spike) {
    var detail = clear($("spike-detail"));
    detail.hidden = false;
    var head = el("div", "spike-head");
    head.appendChild(el("strong", null, "Spike: " + spike.brand + ", " + fmtPeriod(spike.period, true)));
    var close = el("button", "link-button", "Close");
    close.type = "button";
    close.addEventListener("click", function () { detail.hidden = true; });
    head.appendChild(close);
    detail.appendChild(head);
    detail.appendChild(el("p", null, spike.count + " " + (spike.metric === "negative" ? "negative mentions" : "mentions") +
      " against a usual " + spike.mean.toFixed(1) + " (threshold " + spike.threshold.toFixed(1) +
      (spike.z !== null ? ", " + spike.z.toFixed(1) + " standard deviations above" : "") + ")."));
    var facts = el("dl", "spike-facts");
    function fact(title, items) {
      if (!items.length) return;
      facts.appendChild(el("dt", null, title));
      var dd = el("dd");
      items.forEach(function (item) {
        dd.appendChild(el("span", "pill", item.name + " (" + item.count + ")"));
      });
      facts.appendChild(dd);
    }
    fact("Rising terms", spike.terms);
    fact("Sources", spike.sources);
    fact("Domains", spike.domains);
    detail.appendChild(facts);
    if (spike.samples.length) {
      detail.appendChild(el("h4", null, "Most engaging mentions"));
      var list = el("ol", "compact-list");
      spike.samples.forEach(function (sample) {
        list.appendChild(compactMention(sample));
      });
      detail.appendChild(list);
    }
    var search = el("button", "small", "Show these mentions");
    search.type = "button";
    search.addEventListener("click", function () {
      $("since").value = spike.start.slice(0, 10);
      $("until").value = addDays(spike.end.slice(0, 10), spike.end.slice(11, 19) === "00:00:00" ? -1 : 0);
      document.querySelectorAll("#brand-filter input").forEach(function (box) {
        box.checked = box.value === spike.brand;
      });
      refresh();
    });
    detail.appendChild(search);
    detail.scrollIntoView({ block: "nearest" });
  }

  function compactMention(row) {
    var item = el("li", "compact");
    item.appendChild(linkOut(row.url, row.title || "(no title)", "compact-title"));
    var meta = [row.brand, row.source, row.author, fmtDateTime(row.published_at), fmtInt(row.engagement) + " engagements"];
    item.appendChild(el("div", "muted", meta.filter(Boolean).join(" · ")));
    return item;
  }

  function table(node, columns, rows, empty) {
    clear(node);
    var head = el("thead");
    var tr = el("tr");
    columns.forEach(function (c) {
      var th = el("th", c.numeric ? "num" : null, c.title);
      th.scope = "col";
      tr.appendChild(th);
    });
    head.appendChild(tr);
    node.appendChild(head);
    var body = el("tbody");
    rows.forEach(function (row) {
      var line = el("tr");
      columns.forEach(function (c) {
        var td = el("td", c.numeric ? "num" : null);
        var value = c.cell(row);
        if (value instanceof Node) td.appendChild(value);
        else td.textContent = value === null || value === undefined ? "–" : String(value);
        line.appendChild(td);
      });
      body.appendChild(line);
    });
    if (!rows.length) {
      var emptyRow = el("tr");
      var td = el("td", "muted", empty || "Nothing yet.");
      td.colSpan = columns.length;
      emptyRow.appendChild(td);
      body.appendChild(emptyRow);
    }
    node.appendChild(body);
  }

  function brandDot(name) {
    var span = el("span", "brand-dot-label");
    var dot = el("span", "swatch");
    dot.style.background = colors[name] || "#999";
    span.appendChild(dot);
    span.appendChild(document.createTextNode(name));
    return span;
  }

  function brandCounts(counts) {
    return Object.keys(counts || {}).map(function (k) { return k + " " + counts[k]; }).join(", ");
  }

  function renderEarned(data) {
    table($("earned-table"), [
      { title: "Brand", cell: function (r) { return brandDot(r.brand); } },
      { title: "Earned", numeric: true, cell: function (r) {
        var span = el("span", null, fmtInt(r.earned));
        span.title = r.earned + " of " + r.mentions + " mentions (" + r.owned + " owned)";
        return span;
      } },
      { title: "Earned %", numeric: true, cell: function (r) { return fmtPct(r.earned_share, 0); } },
      { title: "Engagement", numeric: true, cell: function (r) { return fmtCompact(r.earned_engagement); } },
      { title: "Value", numeric: true, cell: function (r) {
        if (r.emv === null || r.emv === undefined) return "–";
        var span = el("span", null, fmtCompact(Math.round(r.emv)) + " " + (r.currency || ""));
        span.title = r.formula || "";
        return span;
      } },
    ], data.rows, "No mentions in this range.");
    var notes = clear($("earned-notes"));
    data.notes.forEach(function (note) { notes.appendChild(el("li", null, note)); });
    var top = clear($("earned-top"));
    var byId = {};
    var unique = [];
    data.top.forEach(function (row) {
      var key = row.id || row.url || row.title;
      if (byId[key]) {
        byId[key].brand += ", " + row.brand; // one line for a mention earned by two brands
        return;
      }
      byId[key] = Object.assign({}, row);
      unique.push(byId[key]);
    });
    unique.sort(function (a, b) { return b.engagement - a.engagement; }).slice(0, 5)
      .forEach(function (row) { top.appendChild(compactMention(row)); });
    if (!data.top.length) top.appendChild(el("li", "muted", "No earned mentions in this range."));
  }

  function renderAuthors(data) {
    table($("authors-table"), [
      { title: "Author", cell: function (r) {
        var cell = el("div");
        cell.appendChild(linkOut(r.url, r.author + (r.handle && r.handle !== r.author ? " (" + r.handle + ")" : "")));
        cell.appendChild(el("div", "muted small-text", r.sources.join(", ") + " · " + brandCounts(r.brands)));
        return cell;
      } },
      { title: "Mentions", numeric: true, cell: function (r) { return fmtInt(r.mentions); } },
      { title: "Engagement", numeric: true, cell: function (r) { return fmtCompact(r.engagement); } },
    ], data.rows, "No authors in this range.");
  }

  function renderDomains(data) {
    table($("domains-table"), [
      { title: "Domain", cell: function (r) { return r.domain; } },
      { title: "Mentions", numeric: true, cell: function (r) { return fmtInt(r.mentions); } },
      { title: "Share", numeric: true, cell: function (r) { return fmtPct(r.share, 0); } },
      { title: "Engagement", numeric: true, cell: function (r) { return fmtCompact(r.engagement); } },
    ], data.rows, "No domains in this range.");
  }

  function renderTrending(data, names) {
    $("trending-window").textContent = "Rising in " + fmtPeriod(data.current[0].slice(0, 10), true) + " – " +
      fmtPeriod(addDays(data.current[1].slice(0, 10), data.current[1].slice(11, 19) === "00:00:00" ? -1 : 0), true) +
      " compared with the " + daysBetween(data.previous[0].slice(0, 10), data.previous[1].slice(0, 10)) +
      " days before (" + (data.field === "phrases" ? "key phrases" : "named entities") + ").";
    var node = clear($("trending-list"));
    names.forEach(function (name) {
      var terms = data.terms.filter(function (t) { return t.brand === name; });
      var block = el("div", "trend-brand");
      block.appendChild(brandDot(name));
      var list = el("div", "pills");
      terms.forEach(function (t) {
        var pill = el("span", "pill", t.term + " " + t.count);
        pill.title = t.count + " now, " + t.previous + " before (expected " + t.expected + "), score " + t.score;
        list.appendChild(pill);
      });
      if (!terms.length) list.appendChild(el("span", "muted", "nothing rising"));
      block.appendChild(list);
      node.appendChild(block);
    });
  }

  var STATUS_CLASS = { healthy: "ok", degraded: "warn", broken: "bad" };

  function renderHealth(data) {
    table($("health-table"), [
      { title: "Source", cell: function (r) { return r.source; } },
      { title: "Status", cell: function (r) {
        var badge = el("span", "badge " + (STATUS_CLASS[r.status] || "none"), r.status);
        if (r.last_error) badge.title = r.last_error;
        return badge;
      } },
      { title: "Last runs", cell: function (r) {
        var dots = el("span", "history");
        r.history.forEach(function (h) {
          var dot = el("span", "hdot " + (STATUS_CLASS[h] || "none"));
          dot.title = h;
          dots.appendChild(dot);
        });
        return dots;
      } },
      { title: "Mentions", numeric: true, cell: function (r) { return r.runs ? fmtInt(r.last_run_mentions) : "–"; } },
      { title: "Errors", numeric: true, cell: function (r) { return r.runs ? fmtInt(r.last_run_errors) : "–"; } },
    ], data.sources, "No sources configured.");
    $("health-note").textContent = data.last_run
      ? "Last crawl " + fmtDateTime(data.last_run.finished_at) + ": " + fmtInt(data.last_run.found) +
        " found, " + fmtInt(data.last_run.indexed) + " indexed, " + fmtInt(data.last_run.errors) + " errors."
      : "No crawl recorded yet.";
  }

  /* The schedule of `listener run` (docs/deployment.md): shown once it has run. */
  function fmtEvery(seconds) {
    if (seconds % 86400 === 0) return seconds / 86400 + " d";
    if (seconds % 3600 === 0) return seconds / 3600 + " h";
    if (seconds % 60 === 0) return seconds / 60 + " min";
    return seconds + " s";
  }

  function renderSchedule(data) {
    $("schedule-wrap").hidden = !data.scheduled;
    if (!data.scheduled) return;
    table($("schedule-table"), [
      { title: "Source", cell: function (r) { return r.source; } },
      { title: "Every", cell: function (r) { return fmtEvery(r.every_seconds); } },
      { title: "Next run", cell: function (r) {
        return r.running ? "running" : (r.next_run ? fmtDateTime(r.next_run) : "now");
      } },
      { title: "Lag", numeric: true, cell: function (r) {
        return r.lag_seconds ? Math.round(r.lag_seconds) + " s" : "on time";
      } },
      { title: "Last result", cell: function (r) { return r.last_result; } },
    ], data.sources, "Not scheduled yet.");
  }

  /* -- mentions ------------------------------------------------------------------------- */

  function mentionItem(m, state) {
    var item = el("li", "mention");
    item.dataset.id = m.id;
    var meta = el("div", "mention-meta");
    meta.appendChild(el("span", "source", m.source + (m.source_kind ? " · " + m.source_kind : "")));
    meta.appendChild(el("span", "domain", m.domain));
    var time = el("time", "date", fmtDateTime(m.published_at));
    time.dateTime = m.published_at;
    meta.appendChild(time);
    if (m.sentiment) {
      var badge = el("span", "sentiment-badge s-" + m.sentiment.label, "overall " + m.sentiment.label);
      badge.title = "sentiment of the whole text: " + m.sentiment.score.toFixed(2) +
        " (the brand labels below give the sentiment for each brand)";
      meta.appendChild(badge);
    }
    if (m.duplicate) meta.appendChild(el("span", "badge none", "copy"));
    item.appendChild(meta);

    var title = el("h3", "mention-title");
    var titleLink = linkOut(m.url, "", "title-link");
    if (m.title_segments.length) appendSegments(titleLink, m.title_segments);
    else titleLink.textContent = m.domain ? "Mention on " + m.domain : "Mention";
    title.appendChild(titleLink);
    item.appendChild(title);

    var text = appendSegments(el("p", "mention-text"), m.text_segments);
    item.appendChild(text);

    var foot = el("div", "mention-foot");
    var brands = el("span", "brands");
    m.brands.forEach(function (b) {
      var chip = el("span", "brand-chip", b.brand);
      chip.style.borderColor = colors[b.brand] || "#999";
      if (b.sentiment) {
        chip.appendChild(el("span", "chip-sent s-" + b.sentiment, b.sentiment));
      }
      if (b.owned) chip.appendChild(el("span", "chip-owned", "owned"));
      brands.appendChild(chip);
    });
    foot.appendChild(brands);
    var author = el("span", "author");
    var name = m.author.name || m.author.handle;
    if (name) {
      author.appendChild(document.createTextNode("by "));
      author.appendChild(linkOut(m.author.url, name, "author-name"));
      if (m.author.handle && m.author.name && m.author.handle !== m.author.name) {
        author.appendChild(el("span", "muted", " " + m.author.handle));
      }
      if (m.author.followers !== null && m.author.followers !== undefined) {
        author.appendChild(el("span", "muted", " · " + fmtCompact(m.author.followers) + " followers"));
      }
    }
    foot.appendChild(author);
    var e = m.engagement;
    var parts = [];
    if (e.likes !== null) parts.push(fmtCompact(e.likes) + " likes");
    if (e.comments !== null) parts.push(fmtCompact(e.comments) + " comments");
    if (e.shares !== null) parts.push(fmtCompact(e.shares) + " shares");
    if (e.views !== null) parts.push(fmtCompact(e.views) + " views");
    var engagement = el("span", "engagement", "♥ " + fmtInt(e.total));
    engagement.title = parts.length ? parts.join(", ") : "no engagement reported";
    foot.appendChild(engagement);
    var actions = el("span", "actions");
    if (m.text_truncated) {
      var more = el("button", "link-button", "Full text");
      more.type = "button";
      more.addEventListener("click", function () {
        more.disabled = true;
        var params = state.mode === "rule" ? { rule: state.q } : { q: state.q };
        api("mentions/" + encodeURIComponent(m.id), params).then(function (full) {
          clear(text);
          appendSegments(text, full.text_segments);
          more.remove();
        }).catch(function (error) {
          more.disabled = false;
          if (!(error instanceof AuthNeeded)) more.textContent = "Full text (failed: " + error.message + ")";
        });
      });
      actions.appendChild(more);
    }
    var open = linkOut(m.url, "Open ↗", "open-link");
    if (open.tagName === "A") actions.appendChild(open);
    foot.appendChild(actions);
    item.appendChild(foot);
    return item;
  }

  function mentionParams(state) {
    var params = scopeParams(state);
    if (state.q) {
      if (state.mode === "rule") params.rule = state.q;
      else params.q = state.q;
    }
    params.sentiment = state.sentiment || null;
    params.sort = state.sort === "relevance" && (!state.q || state.mode === "rule") ? "newest" : state.sort;
    params.size = PAGE_SIZE;
    return params;
  }

  function loadMentions(state, more, reveal) {
    var mine = generation;
    var list = $("mention-list");
    var button = $("more");
    if (!more) {
      clear(list);
      cursor = null;
      shown = 0;
      $("result-count").textContent = "Searching…";
    }
    button.disabled = true;
    busy("mentions-card", true);
    var params = mentionParams(state);
    if (more && cursor) params.cursor = cursor;
    return api("mentions", params).then(function (page) {
      if (mine !== generation) return;
      page.mentions.forEach(function (m) { list.appendChild(mentionItem(m, state)); });
      shown += page.mentions.length;
      cursor = page.next_cursor;
      button.hidden = !cursor;
      button.disabled = false;
      var total = page.total_relation === "gte" ? fmtInt(page.total) + "+" : fmtInt(page.total);
      if (!page.exact) total = "up to " + total;
      $("result-count").textContent = shown
        ? "Showing " + fmtInt(shown) + " of " + total + " mentions"
        : "No mentions match.";
      if (!shown) list.appendChild(el("li", "empty", "No mentions match these filters. Try fewer words or a wider date range."));
      if (reveal) $("mentions-card").scrollIntoView({ block: "start" });
    }).catch(function (error) {
      if (mine !== generation || error instanceof AuthNeeded) return;
      button.disabled = false;
      $("result-count").textContent = "";
      if (error.param === "q" || error.param === "rule" || error.param === "sort" || error.param === "since" || error.param === "until") {
        $("filter-error").textContent = error.message;
      }
      list.appendChild(el("li", "error", "Search failed: " + error.message));
    }).then(function () {
      if (mine === generation) busy("mentions-card", false);
    });
  }

  $("more").addEventListener("click", function () {
    loadMentions(currentState, true);
  });

  /* -- crawl ------------------------------------------------------------------------------ */

  function renderCrawl(crawl) {
    var box = clear($("crawl-status"));
    box.hidden = false;
    box.className = "crawl-status " + crawl.state;
    var line = "Crawl " + crawl.state + " · " + Math.round(crawl.elapsed_seconds) + " s · " +
      fmtInt(crawl.progress.found) + " found · " + fmtInt(crawl.progress.indexed) + " indexed · " +
      fmtInt(crawl.progress.errors) + " errors";
    if (crawl.progress.left_for_next_run) {
      line += " · " + fmtInt(crawl.progress.left_for_next_run) + " left for the next crawl";
    }
    box.appendChild(el("div", "crawl-line", line));
    if (crawl.error) box.appendChild(el("div", "error", crawl.error));
    crawl.summary.forEach(function (s) { box.appendChild(el("div", "muted mono", s.trim())); });
    $("crawl-button").disabled = crawl.state === "running";
  }

  function pollCrawl(id) {
    clearTimeout(crawlTimer);
    api("crawls/" + id).then(function (crawl) {
      renderCrawl(crawl);
      if (crawl.state === "running") {
        crawlTimer = setTimeout(function () { pollCrawl(id); }, 1500);
      } else {
        refresh();
      }
    }).catch(function (error) {
      if (!(error instanceof AuthNeeded)) {
        $("crawl-status").hidden = false;
        $("crawl-status").textContent = "Could not read the crawl's progress: " + error.message;
      }
    });
  }

  $("crawl-button").addEventListener("click", function () {
    var button = $("crawl-button");
    button.disabled = true;
    api("crawls", null, { method: "POST", body: {} }).then(function (crawl) {
      renderCrawl(crawl);
      pollCrawl(crawl.id);
    }).catch(function (error) {
      button.disabled = false;
      if (!(error instanceof AuthNeeded)) {
        var box = $("crawl-status");
        box.hidden = false;
        box.textContent = "Could not start a crawl: " + error.message;
      }
    });
  });

  /* -- putting it together ------------------------------------------------------------------- */

  var currentState = null;

  function refresh(reveal) {
    generation += 1;
    var state = readForm();
    currentState = state;
    writeHash(state);
    $("filter-error").textContent = "";
    if (state.since && state.until && state.since > state.until) {
      $("filter-error").textContent = "The From date is after the To date.";
      return;
    }
    var names = brandNames(state);
    var scope = scopeParams(state);
    var interval = intervalFor(state);
    var sovPromise = api("share-of-voice", Object.assign({ interval: interval }, scope));
    var sentimentPromise = api("sentiment", Object.assign({ interval: interval }, scope));
    var mine = generation;
    Promise.all([sovPromise, sentimentPromise]).then(function (both) {
      if (mine === generation) renderKpis(both[0], both[1], names);
    }).catch(function () { clear($("kpis")); });
    loadCard("sov-card", sovPromise, function (d) { renderSov(d, names); }, $("sov-chart"));
    loadCard("sentiment-card", sentimentPromise, function (d) { renderSentiment(d, names); }, $("sentiment-chart"));
    loadCard("volume-card", api("spikes", Object.assign({ interval: volumeIntervalFor(state) }, scope)),
      function (d) { renderSpikes(d, names); }, $("volume-chart"));
    loadCard("earned-card", api("earned-media", Object.assign({ top: 5 }, scope)), renderEarned, $("earned-table"));
    loadCard("authors-card", api("top/authors", Object.assign({ limit: 8 }, scope)), renderAuthors, $("authors-table"));
    loadCard("domains-card", api("top/domains", Object.assign({ limit: 8 }, scope)), renderDomains, $("domains-table"));
    var trendScope = Object.assign({}, scope);
    if (state.since && state.until) {
      var days = daysBetween(state.since, state.until) + 1;
      var windowDays = days >= 14 ? 7 : Math.max(1, Math.floor(days / 2));
      trendScope.since = addDays(state.until, 1 - windowDays);
    } else {
      trendScope.since = "7d";
    }
    loadCard("trending-card", api("trending", Object.assign({ limit: 6 }, trendScope)),
      function (d) { renderTrending(d, names); }, $("trending-list"));
    loadCard("health-card", api("sources/health"), renderHealth, $("health-table"));
    api("sources/schedule").then(renderSchedule).catch(function () {
      $("schedule-wrap").hidden = true;  // an older server without the endpoint
    });
    loadMentions(state, false, reveal === true && Boolean(state.q));
  }

  function setupFilters(info) {
    var fieldset = $("brand-filter");
    Array.prototype.slice.call(fieldset.querySelectorAll("label")).forEach(function (n) { n.remove(); });
    info.brands.forEach(function (brand, i) {
      colors[brand.name] = PALETTE[i % PALETTE.length];
      var label = el("label", "brand-option");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = brand.name;
      box.addEventListener("change", refresh);
      label.appendChild(box);
      var swatch = el("span", "swatch");
      swatch.style.background = colors[brand.name];
      label.appendChild(swatch);
      label.appendChild(document.createTextNode(brand.name));
      fieldset.appendChild(label);
    });
    [["source", "All sources"], ["kind", "All kinds"], ["language", "All"]].forEach(function (pair) {
      var select = clear($(pair[0]));
      var any = el("option", null, pair[1]);
      any.value = "";
      select.appendChild(any);
      (info.facets[pair[0]] || []).forEach(function (facet) {
        var option = el("option", null, facet.value + " (" + fmtInt(facet.count) + ")");
        option.value = facet.value;
        select.appendChild(option);
      });
    });
    var summary = clear($("project-summary"));
    summary.appendChild(el("strong", null, info.brands.map(function (b) { return b.name; }).join(" · ")));
    var range = info.data.first
      ? " — " + fmtInt(info.data.mentions) + " mentions, " + fmtDateTime(info.data.first).split(",")[0] +
        " to " + fmtDateTime(info.data.last).split(",")[0]
      : " — no mentions stored yet: start a crawl";
    summary.appendChild(document.createTextNode(range));
    summary.appendChild(el("span", "engine-tag", info.engine === "embedded" ? "embedded engine" : "Elasticsearch"));
    $("signout").hidden = !info.auth;
  }

  function defaults(info) {
    var state = { mode: "text", q: "", brand: [], interval: "auto", sort: "newest" };
    if (info.data.first && info.data.last) {
      var last = new Date(info.data.last);
      var first = new Date(info.data.first);
      var from = new Date(last.getTime() - 89 * 86400000);
      state.since = isoDay(first > from ? first : from);
      state.until = isoDay(last);
    }
    return state;
  }

  function start() {
    api("project").then(function (info) {
      project = info;
      setupFilters(info);
      var hash = readHash();
      applyState(Object.keys(hash).length ? Object.assign(defaults(info), hash) : defaults(info));
      refresh();
      api("crawls").then(function (list) {
        var running = list.crawls.filter(function (c) { return c.state === "running"; })[0];
        if (running) {
          renderCrawl(running);
          pollCrawl(running.id);
        }
      }).catch(function () { /* shown on the next action */ });
    }).catch(function (error) {
      if (error instanceof AuthNeeded) return;
      $("project-summary").textContent = "Cannot reach the listener API: " + error.message;
    });
  }

  $("filters").addEventListener("submit", function (event) {
    event.preventDefault();
    refresh(true); // a search shows its results
  });
  ["source", "kind", "sentiment", "language", "since", "until", "interval", "sort"].forEach(function (id) {
    $(id).addEventListener("change", refresh);
  });
  $("mode").addEventListener("change", function () {
    updatePlaceholder();
    if ($("q").value.trim()) refresh();
  });
  $("reset").addEventListener("click", function () {
    if (!project) return;
    applyState(Object.assign({ source: "", kind: "", sentiment: "", language: "" }, defaults(project)));
    refresh();
  });

  window.listenerDashboard = { safeHref: safeHref, refresh: refresh };
  start();
})();
