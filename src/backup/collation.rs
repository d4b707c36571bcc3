//! Collation names from the 5-byte TDS collation SQL Server stores in the set header (MS-TDS
//! 2.2.5.1.2): a u32 of LCID (20 bits), comparison flags and version, then the SQL sort id. A
//! non-zero sort id names a legacy SQL collation; otherwise the LCID and flags build a Windows name.

use super::facts::Collation;

const IGNORE_CASE: u32 = 1 << 20;
const IGNORE_ACCENT: u32 = 1 << 21;
const IGNORE_WIDTH: u32 = 1 << 22;
const IGNORE_KANA: u32 = 1 << 23;
const BINARY: u32 = 1 << 24;
const BINARY2: u32 = 1 << 25;
const UTF8: u32 = 1 << 26;

/// SQL collations by sort id (the `SortOrder` column of `RESTORE HEADERONLY`).
const SQL_SORT_IDS: &[(u8, &str)] = &[
    (30, "SQL_Latin1_General_CP437_BIN"),
    (31, "SQL_Latin1_General_CP437_CS_AS"),
    (32, "SQL_Latin1_General_CP437_CI_AS"),
    (33, "SQL_Latin1_General_Pref_CP437_CI_AS"),
    (34, "SQL_Latin1_General_CP437_CI_AI"),
    (40, "SQL_Latin1_General_CP850_BIN"),
    (41, "SQL_Latin1_General_CP850_CS_AS"),
    (42, "SQL_Latin1_General_CP850_CI_AS"),
    (43, "SQL_Latin1_General_Pref_CP850_CI_AS"),
    (44, "SQL_Latin1_General_CP850_CI_AI"),
    (49, "SQL_1xCompat_CP850_CI_AS"),
    (51, "SQL_Latin1_General_CP1_CS_AS"),
    (52, "SQL_Latin1_General_CP1_CI_AS"),
    (53, "SQL_Latin1_General_Pref_CP1_CI_AS"),
    (54, "SQL_Latin1_General_CP1_CI_AI"),
    (55, "SQL_AltDiction_CP850_CS_AS"),
    (56, "SQL_AltDiction_Pref_CP850_CI_AS"),
    (57, "SQL_AltDiction_CP850_CI_AI"),
    (58, "SQL_Scandinavian_Pref_CP850_CI_AS"),
    (59, "SQL_Scandinavian_CP850_CS_AS"),
    (60, "SQL_Scandinavian_CP850_CI_AS"),
    (61, "SQL_AltDiction_CP850_CI_AS"),
    (81, "SQL_Latin1_General_CP1250_CS_AS"),
    (82, "SQL_Latin1_General_CP1250_CI_AS"),
    (83, "SQL_Czech_CP1250_CS_AS"),
    (84, "SQL_Czech_CP1250_CI_AS"),
    (85, "SQL_Hungarian_CP1250_CS_AS"),
    (86, "SQL_Hungarian_CP1250_CI_AS"),
    (87, "SQL_Polish_CP1250_CS_AS"),
    (88, "SQL_Polish_CP1250_CI_AS"),
    (89, "SQL_Romanian_CP1250_CS_AS"),
    (90, "SQL_Romanian_CP1250_CI_AS"),
    (91, "SQL_Croatian_CP1250_CS_AS"),
    (92, "SQL_Croatian_CP1250_CI_AS"),
    (93, "SQL_Slovak_CP1250_CS_AS"),
    (94, "SQL_Slovak_CP1250_CI_AS"),
    (95, "SQL_Slovenian_CP1250_CS_AS"),
    (96, "SQL_Slovenian_CP1250_CI_AS"),
    (105, "SQL_Latin1_General_CP1251_CS_AS"),
    (106, "SQL_Latin1_General_CP1251_CI_AS"),
    (107, "SQL_Ukrainian_CP1251_CS_AS"),
    (108, "SQL_Ukrainian_CP1251_CI_AS"),
    (113, "SQL_Latin1_General_CP1253_CS_AS"),
    (114, "SQL_Latin1_General_CP1253_CI_AS"),
    (120, "SQL_MixDiction_CP1253_CS_AS"),
    (121, "SQL_AltDiction_CP1253_CS_AS"),
    (124, "SQL_Latin1_General_CP1253_CI_AI"),
    (129, "SQL_Latin1_General_CP1254_CS_AS"),
    (130, "SQL_Latin1_General_CP1254_CI_AS"),
    (137, "SQL_Latin1_General_CP1255_CS_AS"),
    (138, "SQL_Latin1_General_CP1255_CI_AS"),
    (145, "SQL_Latin1_General_CP1256_CS_AS"),
    (146, "SQL_Latin1_General_CP1256_CI_AS"),
    (153, "SQL_Latin1_General_CP1257_CS_AS"),
    (154, "SQL_Latin1_General_CP1257_CI_AS"),
    (155, "SQL_Estonian_CP1257_CS_AS"),
    (156, "SQL_Estonian_CP1257_CI_AS"),
    (157, "SQL_Latvian_CP1257_CS_AS"),
    (158, "SQL_Latvian_CP1257_CI_AS"),
    (159, "SQL_Lithuanian_CP1257_CS_AS"),
    (160, "SQL_Lithuanian_CP1257_CI_AS"),
    (183, "SQL_Danish_Pref_CP1_CI_AS"),
    (184, "SQL_SwedishPhone_Pref_CP1_CI_AS"),
    (185, "SQL_SwedishStd_Pref_CP1_CI_AS"),
    (186, "SQL_Icelandic_Pref_CP1_CI_AS"),
    (210, "SQL_EBCDIC037_CP1_CS_AS"),
    (211, "SQL_EBCDIC273_CP1_CS_AS"),
    (212, "SQL_EBCDIC277_CP1_CS_AS"),
    (213, "SQL_EBCDIC278_CP1_CS_AS"),
    (214, "SQL_EBCDIC280_CP1_CS_AS"),
    (215, "SQL_EBCDIC284_CP1_CS_AS"),
    (216, "SQL_EBCDIC285_CP1_CS_AS"),
    (217, "SQL_EBCDIC297_CP1_CS_AS"),
];

/// Windows collation designators by LCID (the common ones; others get no name).
const WINDOWS_LCIDS: &[(u32, &str)] = &[
    (0x0401, "Arabic"),
    (0x0404, "Chinese_Taiwan_Stroke"),
    (0x0405, "Czech"),
    (0x0406, "Danish_Norwegian"),
    (0x0408, "Greek"),
    (0x0409, "Latin1_General"),
    (0x040A, "Traditional_Spanish"),
    (0x040B, "Finnish_Swedish"),
    (0x040C, "French"),
    (0x040D, "Hebrew"),
    (0x040E, "Hungarian"),
    (0x040F, "Icelandic"),
    (0x0411, "Japanese"),
    (0x0412, "Korean_Wansung"),
    (0x0415, "Polish"),
    (0x0418, "Romanian"),
    (0x0419, "Cyrillic_General"),
    (0x041A, "Croatian"),
    (0x041B, "Slovak"),
    (0x041E, "Thai"),
    (0x041F, "Turkish"),
    (0x0422, "Ukrainian"),
    (0x0424, "Slovenian"),
    (0x0425, "Estonian"),
    (0x0426, "Latvian"),
    (0x0427, "Lithuanian"),
    (0x042A, "Vietnamese"),
    (0x0804, "Chinese_PRC"),
    (0x0C0A, "Modern_Spanish"),
    (0x10407, "German_PhoneBook"),
];

/// Names a TDS collation (`None` when the sort id or LCID is not in the tables).
pub(crate) fn from_tds(raw: [u8; 5]) -> Collation {
    let info = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    Collation {
        name: name(info, raw[4]),
        tds: raw.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The 5 TDS bytes back from their hex form (used by the writer).
pub(crate) fn to_tds(c: &Collation) -> [u8; 5] {
    let mut out = [0u8; 5];
    for (i, o) in out.iter_mut().enumerate() {
        *o = c
            .tds
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

fn name(info: u32, sort_id: u8) -> Option<String> {
    if sort_id != 0 {
        return SQL_SORT_IDS
            .iter()
            .find(|(id, _)| *id == sort_id)
            .map(|(_, n)| (*n).to_string());
    }
    let lcid = info & 0xF_FFFF;
    let base = WINDOWS_LCIDS.iter().find(|(l, _)| *l == lcid)?.1;
    let version = match info >> 28 {
        0 => "",
        1 => "_90",
        2 => "_100",
        3 => "_140",
        _ => return None,
    };
    let mut name = format!("{base}{version}");
    if info & BINARY2 != 0 {
        name.push_str("_BIN2");
    } else if info & BINARY != 0 {
        name.push_str("_BIN");
    } else {
        name.push_str(if info & IGNORE_CASE != 0 {
            "_CI"
        } else {
            "_CS"
        });
        name.push_str(if info & IGNORE_ACCENT != 0 {
            "_AI"
        } else {
            "_AS"
        });
        if info & IGNORE_KANA == 0 {
            name.push_str("_KS");
        }
        if info & IGNORE_WIDTH == 0 {
            name.push_str("_WS");
        }
    }
    if info & UTF8 != 0 {
        name.push_str("_UTF8");
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(hex: &str) -> Option<String> {
        let c = Collation {
            name: None,
            tds: hex.into(),
        };
        from_tds(to_tds(&c)).name
    }

    #[test]
    fn names_every_collation_in_the_fixtures() {
        assert_eq!(
            named("0904d00034").as_deref(),
            Some("SQL_Latin1_General_CP1_CI_AS")
        );
        assert_eq!(named("0904d00000").as_deref(), Some("Latin1_General_CI_AS"));
        assert_eq!(
            named("0904100000").as_deref(),
            Some("Latin1_General_CI_AS_KS_WS")
        );
        assert_eq!(named("0a0cd00000").as_deref(), Some("Modern_Spanish_CI_AS"));
        assert_eq!(named("2a04d00000").as_deref(), Some("Vietnamese_CI_AS"));
        assert_eq!(
            named("1904d00000").as_deref(),
            Some("Cyrillic_General_CI_AS")
        );
    }

    #[test]
    fn names_versioned_binary_and_accent_insensitive_collations() {
        assert_eq!(
            named("0904f02000").as_deref(),
            Some("Latin1_General_100_CI_AI")
        );
        assert_eq!(
            named("0904002200").as_deref(),
            Some("Latin1_General_100_BIN2")
        );
        assert_eq!(
            named("0904d00035").as_deref(),
            Some("SQL_Latin1_General_Pref_CP1_CI_AS")
        );
    }

    #[test]
    fn unknown_sort_ids_and_lcids_have_no_name_but_keep_their_bytes() {
        assert_eq!(named("0904d000ff"), None);
        let c = from_tds([0x99, 0x09, 0xd0, 0, 0]);
        assert_eq!(c.name, None);
        assert_eq!(c.tds, "9909d00000");
    }
}
