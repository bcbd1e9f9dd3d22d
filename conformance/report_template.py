"""The report.html template (Jinja2, autoescaped): one self-contained page, no scripts."""

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Conformance report: {{ status_word }} ({{ totals.fail }} failed)</title>
<style>
  :root { --pass:#17663a; --pass-bg:#e3f4e8; --fail:#a4161a; --fail-bg:#fde7e7;
          --skip:#5c6370; --skip-bg:#eef0f3; --warn:#8a5a00; --ink:#1d2330; --line:#d7dbe2; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
         margin: 0; background: #f6f7f9; }
  main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
  h1 { font-size: 26px; margin: 0 0 4px; }
  h2 { font-size: 20px; margin: 34px 0 10px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
  h3 { font-size: 16px; margin: 0; }
  .meta { color: #4a5260; margin: 0 0 16px; }
  .banner { border-radius: 8px; padding: 14px 18px; font-size: 18px; font-weight: 600; margin: 14px 0 18px; }
  .banner.pass { background: var(--pass-bg); color: var(--pass); border: 1px solid #b5dfc2; }
  .banner.fail { background: var(--fail-bg); color: var(--fail); border: 1px solid #f3b9b9; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { background: #eceff3; font-size: 13px; text-transform: uppercase; letter-spacing: .03em;
       color: #4a5260; }
  .num { text-align: right; font-variant-numeric: tabular-nums; width: 80px; }
  .pill { display: inline-block; min-width: 58px; text-align: center; border-radius: 999px; padding: 1px 9px;
          font-size: 12px; font-weight: 700; letter-spacing: .04em; text-transform: uppercase; }
  .pill.pass { background: var(--pass-bg); color: var(--pass); }
  .pill.fail, .pill.error { background: var(--fail-bg); color: var(--fail); }
  .pill.skip { background: var(--skip-bg); color: var(--skip); }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 14px 0;
          overflow: hidden; }
  .card.fail { border-left: 6px solid var(--fail); }
  .card.pass { border-left: 6px solid var(--pass); }
  .card.skip { border-left: 6px solid var(--skip); }
  .card header { display: flex; gap: 12px; align-items: baseline; padding: 10px 14px; background: #fbfbfc;
                 border-bottom: 1px solid var(--line); }
  .card header .file { margin-left: auto; color: #6b7280; font-size: 12px; }
  .desc { padding: 8px 14px 0; margin: 0; color: #3b4250; }
  .rule { color: #374151; font-size: 13px; }
  .why { font-size: 13px; }
  .why b { color: var(--fail); }
  .warn { color: var(--warn); font-size: 13px; }
  ul.failures { background: #fff; border: 1px solid #f3b9b9; border-radius: 8px;
                padding: 10px 14px 10px 32px; }
  ul.failures li { margin: 4px 0; }
  details { margin: 6px 0 4px; }
  summary { cursor: pointer; font-weight: 600; font-size: 13px; }
  .ex { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; margin-top: 6px; }
  .ex h4 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; color: #4a5260; }
  pre { background: #111827; color: #e5e7eb; padding: 10px; border-radius: 6px; font-size: 12px;
        white-space: pre-wrap; word-break: break-word; margin: 0; max-height: 420px; overflow: auto; }
  a { color: #1f4fbf; }
</style>
</head>
<body><main>
{% macro exchange(ex, open=False) %}{% if ex %}<details{% if open %} open{% endif %}>
<summary>Request and response</summary>
<div class="ex">
  <div><h4>Request</h4><pre>{{ ex.request }}</pre></div>
  <div><h4>Response</h4><pre>{{ ex.response }}</pre></div>
</div></details>{% endif %}{% endmacro %}
<h1>carebridge conformance report</h1>
<p class="meta">Server <b>{{ base_url }}</b> &middot; run {{ issued }} &middot;
  {{ results|length }} script{{ '' if results|length == 1 else 's' }} in
  {{ suites|length }} suite{{ '' if suites|length == 1 else 's' }}</p>
<div class="banner {{ 'fail' if failed else 'pass' }}">
  {% if failed %}FAIL: {{ totals.fail }} of {{ totals.tests }} tests failed{% else %}PASS: all
  {{ totals.pass }} tests passed{% endif %}{% if totals.skip %} &middot; {{ totals.skip }} not run{% endif %}
</div>

<table>
  <tr><th>Suite</th><th class="num">Scripts</th><th class="num">Passed</th><th class="num">Failed</th>
      <th class="num">Not run</th><th>Result</th></tr>
  {% for s in suites %}
  <tr><td><a href="#suite-{{ s.name }}">{{ s.name }}</a></td><td class="num">{{ s.scripts }}</td>
      <td class="num">{{ s.pass }}</td><td class="num">{{ s.fail }}</td><td class="num">{{ s.skip }}</td>
      <td><span class="pill {{ s.result }}">{{ s.result }}</span></td></tr>
  {% endfor %}
</table>

{% if failures %}
<h2>What failed</h2>
<ul class="failures">
  {% for f in failures %}
  <li><a href="#{{ f.anchor }}">{{ f.suite }} / {{ f.script }} &rsaquo; {{ f.test }}</a>
      {% if f.rule %}<span class="rule">&mdash; checks {{ f.rule }}</span>{% endif %}</li>
  {% endfor %}
</ul>
{% endif %}

{% for s in suites %}
<h2 id="suite-{{ s.name }}">Suite: {{ s.name }}</h2>
{% for r in s.results %}
<section class="card {{ r.result }}" id="{{ r.anchor }}">
  <header><span class="pill {{ r.result }}">{{ r.result }}</span><h3>{{ r.title }}</h3>
    <span class="file">{{ r.file }}</span></header>
  {% if r.description %}<p class="desc">{{ r.description }}</p>{% endif %}
  {% if r.not_applicable %}<p class="desc"><b>Not run:</b> {{ r.not_applicable }}</p>{% endif %}
  {% if r.setup_failure %}
  <div class="desc"><p class="why"><b>Setup failed:</b> {{ r.setup_failure.description }} &mdash;
    {{ r.setup_failure.message }}</p>{{ exchange(r.setup_exchange) }}</div>
  {% endif %}
  {% if r.tests %}
  <table>
    <tr><th style="width:80px">Result</th><th>Test</th><th style="width:240px">Rule it checks</th></tr>
    {% for t in r.tests %}
    <tr id="{{ t.anchor }}">
      <td><span class="pill {{ t.result }}">{{ t.result }}</span></td>
      <td><b>{{ t.name }}</b>
        {% if t.description %}<br><span class="rule">{{ t.description }}</span>{% endif %}
        {% if t.failure %}
        <p class="why"><b>{{ t.failure.description }}</b><br>{{ t.failure.message }}</p>
        {{ exchange(t.exchange, open=True) }}
        {% endif %}
        {% for w in t.warnings %}
        <p class="warn">warning: {{ w.description }} ({{ w.message }})</p>
        {% endfor %}
      </td>
      <td class="rule">{{ t.rule or '' }}</td>
    </tr>
    {% endfor %}
  </table>
  {% endif %}
</section>
{% endfor %}
{% endfor %}
</main></body></html>
"""
