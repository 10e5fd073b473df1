//! Lists a folder of an ISO image, or the editions of a Windows ISO, with the crate's own reader:
//! `iso_ls ISO [PATH]`, `iso_ls ISO --editions` (what `vmkit image windows-editions` does), and
//! `iso_ls ISO --editions --count` to print how many reads and bytes that took (the benchmark's check that only
//! the header and the XML are read).

use std::cell::Cell;

use media::ReadAt;

/// A file that counts the reads made through it.
struct Counting {
    file: std::fs::File,
    reads: Cell<u64>,
    bytes: Cell<u64>,
}

impl ReadAt for Counting {
    fn size(&self) -> std::io::Result<u64> {
        self.file.size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        self.bytes.set(self.bytes.get() + buf.len() as u64);
        self.file.read_exact_at(offset, buf)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or("usage: iso_ls ISO [PATH | --editions [--count]]")?;
    let file = std::fs::File::open(path)?;
    let counting = Counting { file, reads: Cell::new(0), bytes: Cell::new(0) };
    let iso = media::Iso::open(&counting)?;
    if args.get(1).map(String::as_str) == Some("--editions") {
        let media = media::windows::inspect(&iso)?;
        for e in &media.editions {
            println!("{e}");
        }
        if args.get(2).map(String::as_str) == Some("--count") {
            eprintln!("{} reads, {} bytes read of {}", counting.reads.get(), counting.bytes.get(), iso.size());
        }
        return Ok(());
    }
    eprintln!("{} volume {:?}", iso.filesystem(), iso.volume_id());
    for e in iso.list(args.get(1).map_or("", String::as_str))? {
        println!("{:>12} {}{}", e.size(), e.name(), if e.is_dir() { "/" } else { "" });
    }
    Ok(())
}
