//! What ships in `assets/` besides scenarios: the window's icon decodes as the 256×256
//! picture it is, and the Linux desktop entry passes `desktop-file-validate`.

use std::path::Path;

#[test]
fn the_icon_is_a_256_pixel_picture_not_a_blank() {
    let icon = eframe::icon_data::from_png_bytes(stickyscope::ui::ICON_PNG).expect("a PNG");
    assert_eq!((icon.width, icon.height), (256, 256));
    let colours: std::collections::BTreeSet<[u8; 4]> = icon
        .rgba
        .chunks_exact(4)
        .map(|p| [p[0], p[1], p[2], p[3]])
        .collect();
    assert!(colours.len() > 8, "{} colours", colours.len());
    // Transparent corners, an opaque middle.
    assert_eq!(icon.rgba[3], 0);
    let middle = (128 * 256 + 128) * 4;
    assert_eq!(icon.rgba[middle + 3], 255);
}

#[test]
fn the_desktop_entry_is_valid() {
    let entry = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/stickyscope.desktop");
    let out = std::process::Command::new("desktop-file-validate")
        .arg(&entry)
        .output()
        .expect("desktop-file-validate runs (scripts/test.sh installs desktop-file-utils)");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("\nExec=stickyscope\n") && text.contains("\nIcon=stickyscope\n"));
}
