//! What a pointer painted into the screen image does to OCR, and what the Cursor pseudo-encoding changes.
//!
//! The measurement behind the runner's parking rule (`RunOptions::park_pointer`): on an Xvnc display, a Tk
//! window shows four buttons; the pointer is put on each word twice (hot spot on its first letter, then on its
//! centre, where a click leaves it), and the screen is read by two clients at once — vmkit's (which announces
//! the pointer shape encodings, so Xvnc keeps the pointer out of its framebuffer) and one without those
//! encodings (which gets the pointer painted in). The table shows what OCR read in each case.
//!
//! Usage: `OMP_THREAD_LIMIT=1 cargo run --release -p automate --example pointer_ocr`

use std::time::Duration;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const WORDS: [&str; 4] = ["Done", "Continue", "Agree", "Install"];

fn read(engine: &mut ocr::Engine, frame: &rfb::Frame) -> Result<ocr::ScreenText> {
    let pixels = ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx)?;
    Ok(engine.read(&pixels)?)
}

/// The words read inside `area`, joined by spaces.
fn words_in(text: &ocr::ScreenText, area: &ocr::Rect) -> String {
    let found: Vec<&str> =
        text.words.iter().filter(|w| !w.bbox.intersection(area).is_empty()).map(|w| w.text.as_str()).collect();
    found.join(" ")
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(measure())
}

async fn measure() -> Result<()> {
    let display = testbed::Display::xvnc(640, 480)?;
    display.command("xsetroot").args(["-cursor_name", "left_ptr"]).status()?;
    let buttons = WORDS.map(|w| format!("'{w}'")).join(", ");
    let program = format!(
        "import tkinter as tk\nr = tk.Tk()\nr.title('pointer-ocr')\n\
         for t in [{buttons}]: tk.Button(r, text=t, font=('DejaVu Sans', 11)).pack(padx=40, pady=10)\nr.mainloop()\n"
    );
    let mut cmd = display.command("python3");
    cmd.arg("-c").arg(program);
    let _window = display.spawn("pointer-ocr", cmd)?;
    display.wait_for_window("pointer-ocr", Duration::from_secs(30))?;

    let with = rfb::Client::connect(&display.vnc_addr(), rfb::ConnectOptions::default()).await?;
    let mut plain = vec![rfb::Encoding::Raw, rfb::Encoding::CopyRect];
    plain.extend(
        rfb::Encoding::PSEUDO
            .into_iter()
            .filter(|e| !matches!(e, rfb::Encoding::Cursor | rfb::Encoding::XCursor | rfb::Encoding::PointerPos)),
    );
    let without =
        rfb::Client::connect(&display.vnc_addr(), rfb::ConnectOptions { encodings: Some(plain), ..Default::default() })
            .await?;
    let mut engine = ocr::Engine::new()?;

    // The pointer out of the way first, to find the words.
    with.move_to(630, 470).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = read(&mut engine, &with.refresh().await?)?;
    println!("| word | pointer on | read with the Cursor encoding | read without it |");
    println!("|---|---|---|---|");
    for word in WORDS {
        let Some(b) = base.words.iter().find(|w| w.text == word).map(|w| w.bbox) else {
            println!("| {word} | — | not read even without a pointer | |");
            continue;
        };
        for (place, x, y) in
            [("first letter", b.x + 3, b.y + b.height / 2), ("centre", b.x + b.width / 2, b.y + b.height / 2)]
        {
            with.move_to(x, y).await?;
            // Hover effects and Xvnc's switch to the client's own pointer settle first.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let clean = read(&mut engine, &with.refresh().await?)?;
            let painted = read(&mut engine, &without.refresh().await?)?;
            println!("| {word} | {place} | {:?} | {:?} |", words_in(&clean, &b), words_in(&painted, &b));
        }
    }
    Ok(())
}
