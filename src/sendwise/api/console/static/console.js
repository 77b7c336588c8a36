// sendwise console: the live rule count and the sample size calculator. No dependency; the
// answers are put in with textContent only, so nothing from a server answer becomes markup.
(function () {
  "use strict";
  function debounce(fn, ms) { let t; return function () { clearTimeout(t); t = setTimeout(fn, ms); }; }
  const rule = document.getElementById("rule");
  const out = document.getElementById("rule-count");
  if (rule && out) {
    let asked = 0;
    const ask = debounce(async function () {
      const text = rule.value;
      if (!text.trim()) { out.textContent = "type a rule"; out.className = "muted"; return; }
      const mine = ++asked;
      const url = rule.dataset.countUrl + "?rule=" + encodeURIComponent(text);
      try {
        const r = await fetch(url, { credentials: "same-origin" });
        const body = await r.json();
        if (mine !== asked) { return; }
        if (body.preparing) {
          out.textContent = body.message; out.className = "muted";
          setTimeout(function () { if (mine === asked) { ask(); } }, 1000);
        } else if (body.error) {
          let msg = body.error;
          if (body.suggestion && msg.indexOf(body.suggestion) < 0) { msg += " (did you mean " + body.suggestion + "?)"; }
          out.textContent = msg; out.className = "error";
        } else {
          out.textContent = body.count.toLocaleString() + " of " + body.of.toLocaleString() + " customers";
          out.className = "ok";
        }
      } catch (e) { out.textContent = "could not count: " + e; out.className = "error"; }
    }, 200);
    rule.addEventListener("input", ask);
  }
  const result = document.getElementById("ss-result");
  if (result) {
    const ids = ["ss-baseline", "ss-lift", "ss-power"];
    const calc = debounce(async function () {
      const v = ids.map(function (i) { return encodeURIComponent(document.getElementById(i).value); });
      const r = await fetch(result.dataset.url + "?baseline=" + v[0] + "&lift=" + v[1] + "&power=" + v[2], { credentials: "same-origin" });
      const body = await r.json();
      if (body.error) { result.textContent = body.error; result.className = "error"; return; }
      result.className = "";
      result.textContent = body.per_arm.toLocaleString() + " customers per arm (and as many in the comparison arm) to detect "
        + (100 * body.baseline).toFixed(2) + "% → " + (100 * body.target).toFixed(2) + "% at 5% two-sided";
    }, 200);
    ids.forEach(function (i) { document.getElementById(i).addEventListener("input", calc); });
  }
})();
