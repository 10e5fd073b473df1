//! Lists a folder of an ISO image, or the editions of a Windows ISO: `iso_ls ISO [PATH]`, `iso_ls ISO --editions`.
//!
//! A small way to look at media with the crate's own reader (what `vmkit image windows-editions` uses).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: iso_ls ISO [PATH | --editions]")?;
    let what = args.next().unwrap_or_default();
    if what == "--editions" {
        let media = media::windows::inspect_path(path.as_ref())?;
        for e in &media.editions {
            println!("{}", e);
        }
        return Ok(());
    }
    let iso = media::Iso::open_path(path.as_ref())?;
    eprintln!("{} volume {:?}", iso.filesystem(), iso.volume_id());
    for e in iso.list(&what)? {
        println!("{:>12} {}{}", e.size(), e.name(), if e.is_dir() { "/" } else { "" });
    }
    Ok(())
}
