//! Receipts and invoices as PDF: lines of text on A4 pages in the standard Helvetica (one of
//! the 14 fonts every PDF reader has, so no font file is embedded or fetched), written with
//! `pdf-writer`. Content streams are left uncompressed: the amounts can be found in the bytes.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);
/// Left margin and top of the first line.
const LEFT: f32 = 56.0;
const TOP: f32 = 780.0;
/// Line height.
const LEADING: f32 = 16.0;
/// Lines per page.
const PER_PAGE: usize = 44;
/// The most lines a document has (an invoice of 10,000 sessions fits).
pub const MAX_LINES: usize = 20_000;

/// One line of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A heading (larger, first line of a page or section).
    Heading(String),
    /// Text.
    Text(String),
    /// A table row: cells at fixed columns (x offsets from the margin, in points).
    Row(Vec<(f32, String)>),
    /// An empty line.
    Blank,
}

/// `text` in the WinAnsi encoding of the standard fonts: ASCII and Latin-1 as they are, `€`
/// as 0x80, anything else `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            c if (' '..='~').contains(&c) => c as u8,
            c if ('\u{a0}'..='\u{ff}').contains(&c) => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// The PDF of `lines` (at most [`MAX_LINES`]; more are cut), titled `title`.
pub fn document(title: &str, lines: &[Line]) -> Vec<u8> {
    let lines = &lines[..lines.len().min(MAX_LINES)];
    let pages: Vec<&[Line]> = if lines.is_empty() {
        vec![&[]]
    } else {
        lines.chunks(PER_PAGE).collect()
    };
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first = 6;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first + 2 * i as i32))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    pdf.type1_font(font)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(pdf_writer::TextStr(title))
        .producer(pdf_writer::TextStr("ocpp-rs example backend"));
    for (i, chunk) in pages.iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
        page.parent(tree);
        page.contents(content_id);
        {
            let mut res = page.resources();
            let mut fonts = res.fonts();
            fonts.pair(Name(b"F1"), font);
            fonts.pair(Name(b"F2"), bold);
        }
        page.finish();
        let mut c = Content::new();
        let mut y = TOP;
        for line in chunk.iter() {
            match line {
                Line::Heading(t) => text(&mut c, b"F2", 16.0, LEFT, y, t),
                Line::Text(t) => text(&mut c, b"F1", 11.0, LEFT, y, t),
                Line::Row(cells) => {
                    for (x, t) in cells {
                        text(&mut c, b"F1", 10.0, LEFT + x, y, t);
                    }
                }
                Line::Blank => {}
            }
            y -= LEADING;
        }
        let footer = format!("{title} - page {} of {}", i + 1, pages.len());
        text(&mut c, b"F1", 8.0, LEFT, 40.0, &footer);
        pdf.stream(content_id, &c.finish());
    }
    pdf.finish()
}

fn text(c: &mut Content, font: &'static [u8], size: f32, x: f32, y: f32, t: &str) {
    let bytes = win_ansi(t);
    c.begin_text();
    c.set_font(Name(font), size);
    c.next_line(x, y);
    c.show(Str(&bytes));
    c.end_text();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_a_pdf_with_its_text() {
        let lines: Vec<Line> = (0..100)
            .map(|i| Line::Text(format!("line {i} 12.50 €")))
            .chain([Line::Heading("Total 1,250.00 EUR".into())])
            .collect();
        let pdf = document("Test", &lines);
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("(Total 1,250.00 EUR) Tj"), "{text}");
        assert!(text.contains("/Count 3"));
        assert_eq!(win_ansi("a€é→"), vec![b'a', 0x80, 0xe9, b'?']);
    }
}
