//! `report.html`: one self-contained page with the run's timeline.
//!
//! Each step is a row: number, line, what it did, its duration and outcome, and a thumbnail of the annotated
//! screen it acted on; clicking the thumbnail opens the full-size image in an overlay (CSS `:target`, no
//! script, so the page works from a file:// URL and under a strict CSP). A failed step shows what was searched
//! for and the screen texts closest to it. The page is rendered from [`RunResult`] through the escaping
//! [`crate::html`] tree; images are referenced by their file names next to the page.

use crate::html::{Element, document};
use crate::result::{BBox, ClickResult, Failure, HealthResult, Outcome, RunResult, StepResult};

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em}
.summary{margin:.3em 0 1em;color:#444}
.summary span{margin-right:1.5em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #ddd;padding:.4em .5em;vertical-align:top;text-align:left}
th{background:#eee;font-weight:600}
td.num,td.dur{white-space:nowrap;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1em .5em;border-radius:.8em;font-size:.85em;color:#fff}
.passed{background:#2e7d32}.failed{background:#c62828}.not_run{background:#9e9e9e}
tr.step-failed{background:#fff3f3}
.desc{color:#666;font-style:italic}
.detail{color:#555;font-size:.9em}
.click{font-size:.9em}.click-none{color:#b00020;font-weight:bold}
img.thumb{width:220px;border:1px solid #ccc;cursor:zoom-in}
.failure{margin-top:.4em;padding:.5em;border-left:4px solid #c62828;background:#fff}
.failure ul{margin:.2em 0 0 1.2em;padding:0}
code{background:#f0f0f0;padding:0 .2em}
.lightbox{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);justify-content:center;align-items:center;z-index:10}
.lightbox:target{display:flex}
.lightbox img{max-width:96vw;max-height:96vh;cursor:zoom-out}
section.health{margin-top:1.5em}
";

/// Renders the report page.
pub fn render(result: &RunResult) -> String {
    let title = format!("vmkit automate — {}", result.script.display());
    let head = Element::new("head")
        .child(Element::new("meta").attr("charset", "utf-8"))
        .child(Element::new("meta").attr("name", "viewport").attr("content", "width=device-width, initial-scale=1"))
        .child(Element::new("title").text(title.clone()))
        .child(Element::new("style").static_markup(STYLE));
    let mut body = Element::new("body").child(Element::new("h1").text(title)).child(summary(result));
    if let Some(err) = &result.error {
        body = body.child(Element::new("p").attr("class", "failure").attr("id", "run-error").text(err.clone()));
    }
    body = body.child(timeline(&result.steps));
    if let Some(h) = &result.health_check {
        body = body.child(health(h));
    }
    // Overlays for full-size screenshots, one per step that has one.
    for step in &result.steps {
        if let Some(screen) = &step.screen {
            body = body.child(
                Element::new("a")
                    .attr("class", "lightbox")
                    .attr("id", format!("shot-{}", step.number))
                    .attr("href", "#_")
                    .child(
                        Element::new("img")
                            .attr("src", screen.annotated.clone())
                            .attr("alt", format!("step {} full size", step.number)),
                    ),
            );
        }
    }
    document(&Element::new("html").attr("lang", "en").child(head).child(body))
}

fn badge(outcome: Outcome) -> Element {
    let class = match outcome {
        Outcome::Passed => "badge passed",
        Outcome::Failed => "badge failed",
        Outcome::NotRun => "badge not_run",
    };
    Element::new("span").attr("class", class).text(outcome.as_str())
}

fn summary(r: &RunResult) -> Element {
    let item = |label: &str, value: String| Element::new("span").text(format!("{label}: {value}"));
    let mut p = Element::new("p")
        .attr("class", "summary")
        .attr("id", "summary")
        .child(badge(r.outcome))
        .child(item("VNC", r.vnc.clone()));
    if let Some(frames) = &r.frames {
        p = p.child(item("replay of", frames.display().to_string()));
    }
    p = p
        .child(item("started", r.started_at.clone()))
        .child(item("duration", secs(r.duration_ms)))
        .child(item("exit code", r.verdict.to_string()))
        .child(item("reconnects", r.reconnects.to_string()))
        .child(item("OCR passes", r.ocr_passes.to_string()));
    let passed = r.steps.iter().filter(|s| s.outcome == Outcome::Passed).count();
    p = p.child(item("steps passed", format!("{passed}/{}", r.steps.len())));
    p
}

fn secs(ms: f64) -> String {
    if ms < 1000.0 { format!("{ms:.0} ms") } else { format!("{:.2} s", ms / 1000.0) }
}

fn timeline(steps: &[StepResult]) -> Element {
    let header = Element::new("tr")
        .children(["#", "line", "step", "start", "duration", "outcome", "screen"].map(|h| Element::new("th").text(h)));
    let rows = steps.iter().map(step_row);
    Element::new("table")
        .attr("id", "timeline")
        .child(Element::new("thead").child(header))
        .child(Element::new("tbody").children(rows))
}

fn step_row(s: &StepResult) -> Element {
    let mut what = Element::new("td").child(Element::new("code").text(s.summary.clone()));
    if let Some(d) = &s.description {
        what = what.child(Element::new("div").attr("class", "desc").text(d.clone()));
    }
    if let Some(d) = &s.detail {
        what = what.child(Element::new("div").attr("class", "detail").text(d.clone()));
    }
    if let Some(c) = &s.click {
        what = what.child(click(c));
    }
    if let Some(f) = &s.failure {
        what = what.child(failure(f));
    }
    let screen = match &s.screen {
        Some(files) => Element::new("td").child(
            Element::new("a").attr("href", format!("#shot-{}", s.number)).child(
                Element::new("img")
                    .attr("class", "thumb")
                    .attr("src", files.annotated.clone())
                    .attr("alt", format!("step {} screen", s.number)),
            ),
        ),
        None => Element::new("td"),
    };
    let class = if s.outcome == Outcome::Failed { "step step-failed" } else { "step" };
    Element::new("tr")
        .attr("class", class)
        .attr("id", format!("step-{}", s.number))
        .attr("data-outcome", s.outcome.as_str())
        .child(Element::new("td").attr("class", "num").text(s.number.to_string()))
        .child(Element::new("td").attr("class", "num").text(s.line.to_string()))
        .child(what)
        .child(Element::new("td").attr("class", "dur").text(if s.outcome == Outcome::NotRun {
            String::new()
        } else {
            secs(s.started_ms)
        }))
        .child(Element::new("td").attr("class", "dur").text(if s.outcome == Outcome::NotRun {
            String::new()
        } else {
            secs(s.duration_ms)
        }))
        .child(Element::new("td").child(badge(s.outcome)))
        .child(screen)
}

/// One line on how a click went: attempts, whether the screen reacted, the guest's pointer.
fn click(c: &ClickResult) -> Element {
    let (class, verdict) = match c.took_effect {
        Some(true) => {
            ("click click-ok", format!("took effect ({:.0} ms after the release)", c.reaction_ms.unwrap_or(0.0)))
        }
        Some(false) => ("click click-none", "no visible effect".to_owned()),
        None => ("click", "effect not checked".to_owned()),
    };
    let attempts = if c.attempts == 1 { "1 click".to_owned() } else { format!("{} clicks", c.attempts) };
    Element::new("div")
        .attr("class", class)
        .attr("data-attempts", c.attempts.to_string())
        .text(format!("{attempts}, {verdict}; pointer: {}", c.pointer))
}

fn bbox(b: &BBox) -> String {
    format!("{}×{} at ({}, {})", b.width, b.height, b.x, b.y)
}

fn failure(f: &Failure) -> Element {
    let mut div = Element::new("div").attr("class", "failure").child(Element::new("strong").text(f.message.clone()));
    let searched = f.searched.iter().map(|p| Element::new("li").child(Element::new("code").text(p.clone())));
    div = div
        .child(Element::new("div").text("Searched for:"))
        .child(Element::new("ul").attr("class", "searched").children(searched));
    if let Some(r) = &f.region {
        div = div.child(Element::new("div").text(format!("in the region {}", bbox(r))));
    }
    if let Some(c) = f.min_confidence {
        div = div.child(Element::new("div").text(format!("with confidence at least {c}")));
    }
    if let Some(n) = f.matches {
        div = div.child(Element::new("div").text(format!("matches found: {n}")));
    }
    if f.candidates.is_empty() {
        div = div.child(Element::new("div").attr("class", "candidates").text("No similar text was on the screen."));
    } else {
        let items = f.candidates.iter().map(|c| {
            Element::new("li").child(Element::new("code").text(c.text.clone())).text(format!(
                " — similarity {:.0}%, confidence {:.0}%, {}",
                c.similarity * 100.0,
                c.confidence * 100.0,
                bbox(&c.bbox)
            ))
        });
        div = div
            .child(Element::new("div").text("Closest texts on the screen:"))
            .child(Element::new("ul").attr("class", "candidates").children(items));
    }
    div
}

fn health(h: &HealthResult) -> Element {
    let attempts = h.attempts.iter().map(|a| {
        let text = match &a.error {
            None => format!("attempt {}: ok in {}", a.number, secs(a.duration_ms)),
            Some(e) => format!("attempt {}: {} ({})", a.number, e, secs(a.duration_ms)),
        };
        Element::new("li").text(text)
    });
    let mut s = Element::new("section")
        .attr("class", "health")
        .attr("id", "health-check")
        .child(Element::new("h2").text("SSH health check "))
        .child(badge(h.outcome))
        .child(Element::new("p").text(format!(
            "{}@{} runs `{}` — {}",
            h.user,
            h.target,
            h.command,
            secs(h.duration_ms)
        )))
        .child(Element::new("ol").children(attempts));
    if let Some(out) = &h.output {
        s = s.child(Element::new("pre").text(out.clone()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Candidate, ScreenFiles};

    fn sample() -> RunResult {
        RunResult {
            script: "installer.yaml".into(),
            vnc: "127.0.0.1:5901".into(),
            frames: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 2500.0,
            outcome: Outcome::Failed,
            verdict: crate::result::Verdict::Failed,
            error: Some("step 2 failed".into()),
            steps: vec![
                StepResult {
                    number: 1,
                    line: 3,
                    action: "wait",
                    summary: "wait \"Welcome\" (timeout 120s)".into(),
                    description: Some("<b>first</b> screen".into()),
                    started_ms: 0.0,
                    duration_ms: 120.0,
                    outcome: Outcome::Passed,
                    detail: None,
                    matched: None,
                    tier: None,
                    point: None,
                    click: None,
                    ocr_passes: 1,
                    tesseract_calls: 1,
                    reconnects: 0,
                    failure: None,
                    screen: Some(ScreenFiles {
                        raw: "001-wait-Welcome.png".into(),
                        annotated: "001-wait-Welcome-annotated.png".into(),
                        ocr_json: "001-wait-Welcome-ocr.json".into(),
                    }),
                },
                StepResult {
                    number: 2,
                    line: 4,
                    action: "click",
                    summary: "click \"I Agree\"".into(),
                    description: None,
                    started_ms: 120.0,
                    duration_ms: 2000.0,
                    outcome: Outcome::Failed,
                    detail: None,
                    matched: None,
                    tier: None,
                    point: None,
                    click: None,
                    ocr_passes: 3,
                    tesseract_calls: 2,
                    reconnects: 0,
                    failure: Some(Failure {
                        message: "\"I Agree\" not found within 2s".into(),
                        searched: vec!["I Agree".into()],
                        region: None,
                        min_confidence: None,
                        matches: Some(0),
                        candidates: vec![Candidate {
                            text: "I Agrea <script>".into(),
                            similarity: 0.86,
                            confidence: 0.9,
                            bbox: BBox { x: 1, y: 2, width: 3, height: 4 },
                        }],
                    }),
                    screen: None,
                },
            ],
            health_check: None,
            reconnects: 0,
            ocr_passes: 4,
            tesseract_calls: 3,
            debug_dir: None,
        }
    }

    #[test]
    fn renders_steps_failures_and_escapes_screen_text() {
        let html = render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("id=\"step-1\"") && html.contains("id=\"step-2\""));
        assert!(html.contains("&lt;b&gt;first&lt;/b&gt; screen"));
        assert!(html.contains("I Agrea &lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("href=\"#shot-1\"") && html.contains("id=\"shot-1\""));
    }
}
