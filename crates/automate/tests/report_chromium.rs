//! Acceptance: `report.html` of a real run (steps that passed with screenshots, then a failing click) opened in
//! headless Chromium renders every step, the failure details (what was searched for, the closest texts on the
//! screen) and thumbnails that link to full-size overlays.

const SCRIPT: &str = "\
boot_wait: 0
boot_commands:
  - wait: {text: 'Welcome to the Installer', timeout: 60}
    description: first <screen> & co
  - click: Continue
  - wait: {text: 'Software Licence Agreement', timeout: 30}
  - click: {text: ['I Accept', 'Accept'], timeout: 2}
  - click: Done
";

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn report_renders_every_step_and_the_failure_in_chromium() {
    let display = testbed::Display::xvnc(1280, 800).expect("Xvnc");
    let scratch = testbed::scratch_dir("report").expect("scratch");
    let record = scratch.path().join("record.json");
    let _app = testbed::Installer::start(&display, &record, 3.0).expect("installer app");
    let script_path = scratch.path().join("script.yaml");
    std::fs::write(&script_path, SCRIPT).expect("write script");
    let script = automate::load_file(&script_path).expect("script loads");

    let debug = scratch.path().join("debug");
    let mut opts = automate::RunOptions::new(display.vnc_addr());
    opts.debug = Some(Some(debug.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let result = rt.block_on(automate::run(&script, &opts, &mut |l| eprintln!("{l}")));
    assert_eq!(result.verdict, automate::result::Verdict::Failed, "the fourth step must fail");

    let page = debug.join("report.html");
    let dom = testbed::browser::dump_dom(&page).expect("chromium renders the report");
    for n in 1..=5 {
        assert!(dom.contains(&format!("id=\"step-{n}\"")), "step {n} missing from the rendered page");
    }
    assert_eq!(count(&dom, "data-outcome=\"passed\""), 3, "{dom}");
    assert_eq!(count(&dom, "data-outcome=\"failed\""), 1);
    assert_eq!(count(&dom, "data-outcome=\"not run\""), 1);
    // The description is text, not markup.
    assert!(dom.contains("first &lt;screen&gt; &amp; co"));
    // Failure details: both alternatives searched for, and the closest texts (the licence screen's buttons).
    let failed = &dom[dom.find("id=\"step-4\"").expect("step 4")..];
    let failed = &failed[..failed.find("id=\"step-5\"").unwrap_or(failed.len())];
    assert!(
        failed.contains("Searched for:")
            && failed.contains("<code>I Accept</code>")
            && failed.contains("<code>Accept</code>"),
        "{failed}"
    );
    assert!(failed.contains("Closest texts on the screen:") && failed.contains("Agree"), "{failed}");
    // Thumbnails link to overlays holding the full-size image, and the images exist.
    for n in 1..=4 {
        assert!(dom.contains(&format!("href=\"#shot-{n}\"")), "no thumbnail link for step {n}");
        assert!(dom.contains(&format!("id=\"shot-{n}\"")), "no overlay for step {n}");
    }
    let imgs: Vec<&str> = dom.split("src=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert!(imgs.len() >= 8, "{imgs:?}");
    for src in imgs {
        assert!(debug.join(src).is_file(), "{src} referenced but missing");
    }

    // And it paints: a screenshot of the page is not blank.
    let png = scratch.path().join("report.png");
    testbed::browser::screenshot(&page, &png, 1280, 2000).expect("screenshot");
    let img = image::open(&png).expect("png").to_rgb8();
    let distinct: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 50, "the rendered report looks blank ({} colours)", distinct.len());
}
