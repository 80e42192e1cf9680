//! A document as PDF: the same figures as its HTML, laid out on A4 pages.
//!
//! The PDF is drawn from the document's context, not from its HTML
//! template: turning a user's HTML and CSS into pages needs a layout
//! engine (a browser, or printpdf's `html` feature with azul and system
//! fonts), far heavier than the rest of the server (see the README's
//! design notes). The text uses the PDF's built-in Helvetica, which every
//! reader has, in the WinAnsi encoding: Latin-script names print as
//! written, others as `?` (the HTML has them whole).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use shop_wire::documents::DocumentKind;

use super::rules::DocumentContext;
use crate::services::notifications::templates::money;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const BODY: f32 = 9.5;
const LEADING: f32 = 13.0;

/// Helvetica's advance widths (per 1000 of the font size) for the
/// printable ASCII characters, from its Adobe font metrics; other
/// characters count as a digit's width, which is near their average.
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584,
    556, // '0'..'?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722,
    778, // '@'..'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
    556, // 'P'..'_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556,
    556, // '`'..'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p'..'~'
];

/// How wide `text` is at `size` points.
fn width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| {
            (c as usize)
                .checked_sub(32)
                .and_then(|i| HELVETICA_WIDTHS.get(i))
                .map_or(556, |w| u32::from(*w))
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `text` in the WinAnsi encoding the fonts are declared with.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '™' => 0x99,
            _ => b'?',
        })
        .collect()
}

/// `text` cut to fit in `room` points, with an ellipsis where it was cut.
fn fit(text: &str, size: f32, room: f32) -> String {
    if width(text, size) <= room {
        return text.to_owned();
    }
    let mut kept = String::new();
    for c in text.chars() {
        kept.push(c);
        if width(&kept, size) + width("…", size) > room {
            kept.pop();
            break;
        }
    }
    format!("{}…", kept.trim_end())
}

/// Pages being drawn, top to bottom.
struct Pages {
    done: Vec<Content>,
    page: Content,
    /// The baseline of the next line.
    y: f32,
    /// Written at the top of each page after the first.
    running_head: String,
}

impl Pages {
    fn new(running_head: String) -> Self {
        Pages {
            done: Vec::new(),
            page: Content::new(),
            y: PAGE_HEIGHT - MARGIN,
            running_head,
        }
    }

    fn text(&mut self, x: f32, font: Name<'_>, size: f32, text: &str) {
        let encoded = win_ansi(text);
        self.page
            .begin_text()
            .set_font(font, size)
            .next_line(x, self.y)
            .show(Str(&encoded))
            .end_text();
    }

    fn text_right(&mut self, right: f32, font: Name<'_>, size: f32, text: &str) {
        self.text(right - width(text, size), font, size, text);
    }

    /// A line across the page just under the line above, and a little room under it.
    fn rule(&mut self, thickness: f32) {
        let y = self.y + LEADING - 3.5;
        self.page
            .set_line_width(thickness)
            .move_to(MARGIN, y)
            .line_to(RIGHT, y)
            .stroke();
        self.down(0.35);
    }

    fn down(&mut self, lines: f32) {
        self.y -= LEADING * lines;
    }

    /// Starts a new page when fewer than `lines` fit on this one.
    fn room_for(&mut self, lines: f32) {
        if self.y - LEADING * lines >= MARGIN {
            return;
        }
        let full = std::mem::replace(&mut self.page, Content::new());
        self.done.push(full);
        self.y = PAGE_HEIGHT - MARGIN;
        let head = self.running_head.clone();
        self.text(MARGIN, BOLD, BODY, &head);
        self.down(2.0);
    }

    fn finish(mut self, title: &str) -> Vec<u8> {
        self.done.push(self.page);
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first_page = 6;
        let page_ids: Vec<Ref> = (0..self.done.len())
            .map(|i| Ref::new(first_page + 2 * i as i32))
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(page_ids.len() as i32);
        for (font, base) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
            pdf.type1_font(font)
                .base_font(Name(base.as_bytes()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.document_info(info).title(TextStr(title));
        for (content, page_id) in self.done.into_iter().zip(&page_ids) {
            let content_id = Ref::new(page_id.get() + 1);
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .parent(tree)
                .contents(content_id);
            page.resources()
                .fonts()
                .pair(REGULAR, regular)
                .pair(BOLD, bold);
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

/// The document of `context` as a PDF file.
pub fn render(context: &DocumentContext) -> Vec<u8> {
    let order = &context.order;
    let currency = Some(order.currency.code().to_owned());
    let amount = |cents: i64| money(cents, currency.clone());
    let invoice = context.kind == DocumentKind::Invoice;
    let heading = match &context.invoice {
        Some(invoice) => format!("{} {}", context.title, invoice.number),
        None => format!("{} {}", context.title, order.number),
    };
    let mut pages = Pages::new(format!("{heading} (continued)"));

    pages.text(MARGIN, BOLD, 20.0, context.title);
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(invoice) = &context.invoice {
        facts.push(("Invoice number", invoice.number.clone()));
        facts.push(("Invoice date", invoice.issued_on.clone()));
    }
    facts.push(("Order", order.number.clone()));
    facts.push(("Order date", order.placed_on.clone()));
    if let Some(method) = order.shipping_method.as_ref().filter(|_| !invoice) {
        facts.push(("Shipping", method.clone()));
    }
    let top = pages.y;
    for (label, value) in &facts {
        pages.text(RIGHT - 190.0, REGULAR, BODY, label);
        pages.text_right(RIGHT, BOLD, BODY, value);
        pages.down(1.0);
    }
    pages.y = top - 26.0;
    let mut seller = vec![context.shop.name.clone()];
    seller.extend(context.shop.address.iter().cloned());
    if invoice {
        seller.extend(
            context
                .shop
                .tax_id
                .as_ref()
                .map(|id| format!("Tax ID: {id}")),
        );
    }
    seller.extend(context.shop.email.iter().cloned());
    for line in &seller {
        pages.text(MARGIN, REGULAR, BODY, &fit(line, BODY, 260.0));
        pages.down(1.0);
    }
    pages.y = pages.y.min(top - LEADING * facts.len() as f32);
    pages.down(1.5);

    // The parties: who pays and where it goes.
    let mut parties: Vec<(&str, Vec<String>)> = Vec::new();
    if invoice {
        let mut bill_to: Vec<String> = order
            .billing_address
            .iter()
            .flat_map(|a| std::iter::once(a.name.clone()).chain(a.lines.iter().cloned()))
            .collect();
        bill_to.push(order.customer_email.clone());
        parties.push(("BILL TO", bill_to));
    }
    match &order.shipping_address {
        Some(address) => {
            let mut ship_to = vec![address.name.clone()];
            ship_to.extend(address.lines.iter().cloned());
            if !invoice {
                ship_to.extend(address.phone.iter().cloned());
            }
            parties.push(("SHIP TO", ship_to));
        }
        None if !invoice => parties.push(("SHIP TO", vec![order.customer_email.clone()])),
        None => {}
    }
    let top = pages.y;
    let mut lowest = top;
    for (column, (label, lines)) in parties.iter().enumerate() {
        pages.y = top;
        let x = MARGIN + 250.0 * column as f32;
        pages.text(x, BOLD, 8.0, label);
        pages.down(1.2);
        for line in lines {
            pages.text(x, REGULAR, BODY, &fit(line, BODY, 235.0));
            pages.down(1.0);
        }
        lowest = lowest.min(pages.y);
    }
    pages.y = lowest;
    pages.down(1.0);

    // The lines.
    let columns: &[(&str, f32)] = if invoice {
        &[
            ("SKU", MARGIN),
            ("Item", MARGIN + 95.0),
            ("Qty", 360.0),
            ("Unit price", 445.0),
            ("Amount", RIGHT),
        ]
    } else {
        &[
            ("SKU", MARGIN),
            ("Item", MARGIN + 95.0),
            ("Ordered", 400.0),
            ("Shipped", 450.0),
            ("To pack", RIGHT),
        ]
    };
    let header = |pages: &mut Pages| {
        for (i, (label, x)) in columns.iter().enumerate() {
            if i < 2 {
                pages.text(*x, BOLD, BODY, label);
            } else {
                pages.text_right(*x, BOLD, BODY, label);
            }
        }
        pages.down(1.0);
        pages.rule(1.0);
    };
    pages.room_for(3.0);
    header(&mut pages);
    for item in &order.items {
        if pages.y - LEADING < MARGIN {
            pages.room_for(3.0);
            header(&mut pages);
        }
        pages.text(MARGIN, REGULAR, BODY, &fit(&item.sku, BODY, 90.0));
        let name_room = if invoice { 180.0 } else { 205.0 };
        pages.text(
            MARGIN + 95.0,
            REGULAR,
            BODY,
            &fit(&item.name, BODY, name_room),
        );
        let figures = if invoice {
            [
                item.quantity.to_string(),
                amount(item.unit_price_cents),
                amount(item.line_total_cents),
            ]
        } else {
            [
                item.quantity.to_string(),
                item.shipped.to_string(),
                item.to_ship.to_string(),
            ]
        };
        for ((_, x), figure) in columns[2..].iter().zip(&figures) {
            pages.text_right(*x, REGULAR, BODY, figure);
        }
        pages.down(1.0);
    }
    pages.rule(0.5);
    if !invoice {
        return pages.finish(&heading);
    }

    // The totals, as the HTML invoice lists them.
    let mut totals: Vec<(String, String, bool)> =
        vec![("Subtotal".to_owned(), amount(order.subtotal_cents), false)];
    for discount in &order.discounts {
        totals.push((
            format!("Discount {}", discount.label),
            format!("-{}", amount(discount.amount_cents)),
            false,
        ));
    }
    if order.shipping_method.is_some() || order.shipping_cents != 0 {
        let label = order
            .shipping_method
            .as_ref()
            .map_or_else(|| "Shipping".to_owned(), |m| format!("Shipping ({m})"));
        totals.push((label, amount(order.shipping_cents), false));
    }
    let taxes = order
        .tax_lines
        .iter()
        .map(|tax| (tax, amount(tax.amount_cents)));
    if !order.prices_include_tax {
        totals.extend(taxes.clone().map(|(tax, a)| (tax.label.clone(), a, false)));
    }
    totals.push(("Total".to_owned(), amount(order.total_cents), true));
    if order.prices_include_tax {
        totals.extend(taxes.map(|(tax, a)| (format!("Included {}", tax.label), a, false)));
    }
    if order.refunded_cents != 0 {
        totals.push((
            "Refunded".to_owned(),
            format!("-{}", amount(order.refunded_cents)),
            false,
        ));
    }
    pages.room_for(totals.len() as f32 + 1.0);
    for (label, figure, strong) in &totals {
        let font = if *strong { BOLD } else { REGULAR };
        pages.text_right(RIGHT - 110.0, font, BODY, label);
        pages.text_right(RIGHT, font, BODY, figure);
        pages.down(1.0);
    }
    pages.finish(&heading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_measured_and_cut_to_its_room() {
        assert_eq!(width("10.00", 10.0), (556.0 * 4.0 + 278.0) / 100.0);
        let cut = fit(&"Very long product name ".repeat(10), 10.0, 100.0);
        assert!(cut.ends_with('…') && width(&cut, 10.0) <= 100.0, "{cut}");
        assert_eq!(fit("Mug", 10.0, 100.0), "Mug");
    }

    #[test]
    fn latin_text_keeps_its_letters_and_other_scripts_become_question_marks() {
        assert_eq!(
            win_ansi("Zoë € 5"),
            vec![b'Z', b'o', 0xeb, b' ', 0x80, b' ', b'5']
        );
        assert_eq!(win_ansi("東京"), b"??".to_vec());
    }
}
