//! Untrusted text from players, read in one place: what a player name may be
//! ([`check_name`]) and what a chat line keeps ([`clean_chat`]). The Unicode rules
//! (docs/PROTOCOL.md, "Names and chat") use the character properties of ICU4X's compiled
//! data, so a name that shows nothing (only spaces, format characters, fillers such as
//! U+3164 or U+2800, or combining marks), a right-to-left override, a stack of combining
//! marks or a look-alike of the AI's name is refused wherever a name is taken.

use std::fmt::Write as _;

use icu_normalizer::DecomposingNormalizerBorrowed;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};

/// The AI player's name. Reserved: no human may take it or a look-alike of it.
pub const AI_PLAYER_NAME: &str = "Rampart AI";

/// The longest player name accepted, in characters (after trimming).
pub const MAX_PLAYER_NAME_CHARS: usize = 32;

/// How many combining marks (nonspacing or enclosing) one base character may carry in a
/// name; a chat line keeps that many and drops the rest. Three covers every script's
/// ordinary use (Vietnamese and Thai stack two) and stops "Zalgo" text.
pub const MAX_MARKS_PER_BASE: usize = 3;

/// Characters that render as nothing but are neither default-ignorable nor white space:
/// BRAILLE PATTERN BLANK. (The Hangul fillers U+115F, U+1160, U+3164 and U+FFA0 are
/// default-ignorable.)
const BLANK_GLYPHS: [char; 1] = ['\u{2800}'];

fn category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

/// The bidirectional controls (Unicode Bidi_Control): U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069. They reorder the text around them, so a name can show
/// something other than what it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A format or default-ignorable character: zero-width spaces and joiners, soft hyphen,
/// fillers, tags, variation selectors… (a renderer shows nothing for it).
fn is_ignorable(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) || category(c) == GeneralCategory::Format
}

/// A mark that stacks on the character before it (nonspacing or enclosing).
fn is_stacking_mark(c: char) -> bool {
    matches!(category(c), GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark)
}

/// Whether `c` shows nothing on its own: white space and separators, control, format and
/// default-ignorable characters, combining marks, blank glyphs.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_ignorable(c)
        || BLANK_GLYPHS.contains(&c)
        || (GeneralCategoryGroup::Mark.contains(category(c)) || GeneralCategoryGroup::Separator.contains(category(c)))
}

/// Whether some character of `text` shows.
pub fn has_visible(text: &str) -> bool {
    text.chars().any(|c| !is_invisible(c))
}

/// Whether `text` stacks more than [`MAX_MARKS_PER_BASE`] marks on one character (format
/// characters between the marks do not break the stack: renderers skip them).
fn stacks_marks(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        if is_stacking_mark(c) {
            run += 1;
            if run > MAX_MARKS_PER_BASE {
                return true;
            }
        } else if !is_ignorable(c) {
            run = 0;
        }
    }
    false
}

/// Confusable letters that can spell the AI's name, mapped to the Latin letter they pass
/// for (after compatibility decomposition and lower-casing).
fn unconfuse(c: char) -> char {
    match c {
        'а' | 'ɑ' | 'α' | 'ᴀ' | '4' => 'a',
        'р' | 'ρ' | 'ᴘ' => 'p',
        'м' | 'μ' | 'ᴍ' => 'm',
        'т' | 'τ' | 'ᴛ' | '7' => 't',
        'ʀ' | 'г' => 'r',
        'і' | 'ι' | 'ı' | 'ɪ' | 'ӏ' | 'l' | '1' => 'i',
        other => other,
    }
}

/// What a name looks like once appearance is all that is left: compatibility-decomposed
/// (full-width and mathematical letters, precomposed accents), lower-cased, confusables
/// mapped to Latin, and only letters and digits kept (spaces, punctuation, marks and
/// invisible characters dropped). Two names with one skeleton look alike.
pub fn skeleton(name: &str) -> String {
    DecomposingNormalizerBorrowed::new_nfkd()
        .normalize(name)
        .chars()
        .filter(|c| c.is_alphanumeric() && !is_invisible(*c))
        .flat_map(char::to_lowercase)
        .map(unconfuse)
        .collect()
}

/// Why a name was refused; `reason` is its `details.reason` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// Nothing left after trimming.
    Empty,
    /// Over [`MAX_PLAYER_NAME_CHARS`].
    TooLong,
    /// A control character.
    Control,
    /// A bidirectional control.
    Bidi,
    /// Nothing in it shows.
    Invisible,
    /// More than [`MAX_MARKS_PER_BASE`] marks on one character.
    StackedMarks,
    /// The AI's name, or a look-alike of it.
    Reserved,
}

impl NameProblem {
    /// The wire value of `details.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            NameProblem::Empty => "empty",
            NameProblem::TooLong => "too_long",
            NameProblem::Control => "control_character",
            NameProblem::Bidi => "bidi_control",
            NameProblem::Invisible => "invisible",
            NameProblem::StackedMarks => "stacked_marks",
            NameProblem::Reserved => "reserved",
        }
    }

    /// A sentence for the player.
    pub fn message(self) -> String {
        match self {
            NameProblem::Empty => "player_name is empty".to_owned(),
            NameProblem::TooLong => format!("player_name is longer than {MAX_PLAYER_NAME_CHARS} characters"),
            NameProblem::Control => "player_name contains control characters".to_owned(),
            NameProblem::Bidi => "player_name contains bidirectional control characters".to_owned(),
            NameProblem::Invisible => "player_name has no visible character".to_owned(),
            NameProblem::StackedMarks => {
                format!("player_name stacks more than {MAX_MARKS_PER_BASE} combining marks on one character")
            }
            NameProblem::Reserved => format!("player_name looks like {AI_PLAYER_NAME:?}, the AI's name"),
        }
    }
}

/// Checks a player name; answers it trimmed (white space at both ends), or the first rule
/// it breaks: 1..=32 characters, no control or bidirectional control character, at least
/// one visible character, at most [`MAX_MARKS_PER_BASE`] marks on a character, and not a
/// look-alike of [`AI_PLAYER_NAME`].
pub fn check_name(name: &str) -> Result<&str, NameProblem> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.chars().count() > MAX_PLAYER_NAME_CHARS {
        return Err(NameProblem::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameProblem::Control);
    }
    if name.chars().any(is_bidi_control) {
        return Err(NameProblem::Bidi);
    }
    if !has_visible(name) {
        return Err(NameProblem::Invisible);
    }
    if stacks_marks(name) {
        return Err(NameProblem::StackedMarks);
    }
    if skeleton(name) == skeleton(AI_PLAYER_NAME) {
        return Err(NameProblem::Reserved);
    }
    Ok(name)
}

/// What a chat line keeps: no control or bidirectional control characters, no
/// default-ignorable ones (zero-width spaces, fillers, tags) except the joiners and
/// variation selectors that emoji and some scripts need, and at most
/// [`MAX_MARKS_PER_BASE`] marks on a character; trimmed. The caller refuses a line in
/// which nothing visible is left ([`has_visible`]) as empty.
pub fn clean_chat(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut run = 0;
    for c in text.chars() {
        let joiner = matches!(c, '\u{200C}' | '\u{200D}' | '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}');
        if c.is_control() || is_bidi_control(c) || (is_ignorable(c) && !joiner) {
            continue;
        }
        if is_stacking_mark(c) {
            run += 1;
            if run > MAX_MARKS_PER_BASE {
                continue;
            }
        } else if !joiner {
            run = 0;
        }
        kept.push(c);
    }
    kept.trim().to_owned()
}

/// [`check_name`] as a regular expression, for the OpenAPI document (ECMA-262 with the `u`
/// flag, and Python's `re`): optional white space (what `trim` removes), then 1..=32
/// characters that are not control or bidirectional controls and neither begin nor end
/// with white space, at least one of them visible, no character with more than
/// [`MAX_MARKS_PER_BASE`] marks, and not the AI's name in any case with only white space,
/// ASCII punctuation or invisible characters between its letters (the look-alike letters
/// [`skeleton`] also catches are beyond a regular expression), then white space. Built once
/// per process from the same predicates as the check: code points of the Basic
/// Multilingual Plane are written `\uXXXX`, the others as themselves.
pub fn player_name_pattern() -> String {
    let space = class(|c| c.is_whitespace(), false);
    let bad = |c: char| c.is_control() || is_bidi_control(c);
    let edge = class(|c| bad(c) || c.is_whitespace(), true);
    let inner = class(bad, true);
    let visible = class(|c| bad(c) || is_invisible(c), true);
    let mark = class(is_stacking_mark, false);
    let ignorable = class(|c| is_ignorable(c) && !is_stacking_mark(c), false);
    let filler =
        class(|c| c.is_whitespace() || c.is_ascii_punctuation() || is_ignorable(c) || BLANK_GLYPHS.contains(&c), false);
    let reserved: String = AI_PLAYER_NAME
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| format!("[{}{}]{filler}*", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
        .collect();
    let marks = MAX_MARKS_PER_BASE + 1;
    let inner_max = MAX_PLAYER_NAME_CHARS - 2;
    format!(
        "^{space}*(?={inner}*?{visible})(?!{inner}*?(?:{mark}{ignorable}*){{{marks}}})(?!{filler}*{reserved}$)\
         {edge}(?:{inner}{{0,{inner_max}}}{edge})?{space}*$"
    )
}

/// A character class of the code points `member` accepts (`negated`: of those it refuses),
/// as ranges.
fn class(member: impl Fn(char) -> bool, negated: bool) -> String {
    fn push(out: &mut String, c: char) {
        if (c as u32) < 0x1_0000 {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push(c);
        }
    }
    fn range(out: &mut String, first: char, last: char) {
        push(out, first);
        if last != first {
            out.push('-');
            push(out, last);
        }
    }
    let mut out = String::from(if negated { "[^" } else { "[" });
    let mut start: Option<char> = None;
    let mut last = '\0';
    for c in (0..=0x10_FFFF_u32).filter_map(char::from_u32) {
        match (member(c), start) {
            (true, None) => start = Some(c),
            (false, Some(first)) => {
                range(&mut out, first, last);
                start = None;
            }
            _ => {}
        }
        last = c;
    }
    if let Some(first) = start {
        range(&mut out, first, last);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(name: &str) -> Option<NameProblem> {
        check_name(name).err()
    }

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for name in [
            "ada",
            "  Bob ",
            "Zoë",
            "Nguyễn Thị Ánh",
            "สมชาย",
            "محمد",
            "李小龍",
            "Øyvind-Ås",
            "❤️ fan",
            "👨‍👩‍👧",
            "R2-D2",
            "Rampart",
            "AI fan",
            "Rampart AIs",
        ] {
            assert_eq!(check_name(name), Ok(name.trim()), "{name:?}");
        }
    }

    #[test]
    fn invisible_names_are_refused() {
        for name in [
            "\u{3164}",
            "\u{200B}",
            "\u{2800}",
            "\u{115F}",
            "\u{1160}",
            "\u{FFA0}",
            "\u{200B}\u{3164}\u{2800}",
            "\u{0301}\u{0301}",
            "\u{00AD}",
            "\u{2060}",
            "\u{FEFF}",
            "\u{E0041}\u{E0042}",
            "\u{3000}\u{2800}",
        ] {
            assert_eq!(problem(name), Some(NameProblem::Invisible), "{:?}", name.escape_unicode().to_string());
        }
    }

    #[test]
    fn bidi_controls_are_refused_anywhere_in_a_name() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}',
            '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert_eq!(problem(&format!("ada{c}txt.exe")), Some(NameProblem::Bidi), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn stacked_marks_are_capped_per_character() {
        let stack = |n: usize| format!("a{}", "\u{0301}".repeat(n));
        assert_eq!(check_name(&stack(MAX_MARKS_PER_BASE)).map(str::to_owned), Ok(stack(MAX_MARKS_PER_BASE)));
        assert_eq!(problem(&stack(MAX_MARKS_PER_BASE + 1)), Some(NameProblem::StackedMarks));
        assert_eq!(problem(&stack(31)), Some(NameProblem::StackedMarks), "issue 21: 31 marks on one letter");
        assert_eq!(problem("ส\u{0E49}\u{0E49}\u{0E49}\u{0E49}"), Some(NameProblem::StackedMarks), "Thai tone marks");
        // Zero-width characters between the marks do not reset the count.
        assert_eq!(
            problem("a\u{0301}\u{200B}\u{0301}\u{200D}\u{0301}\u{2060}\u{0301}"),
            Some(NameProblem::StackedMarks)
        );
        // Three on each of many letters is fine.
        assert_eq!(check_name(&"e\u{0301}\u{0302}\u{0323}".repeat(8)).map(|n| n.chars().count()), Ok(32));
    }

    #[test]
    fn the_ai_name_and_its_look_alikes_are_reserved() {
        for name in [
            "Rampart AI",
            "rampart ai",
            "RAMPART AI",
            "  Rampart   AI  ",
            "RampartAI",
            "Rampart\u{00A0}AI",
            "Rampart\u{3000}AI",
            "Rampart\u{2800}AI",
            "Rampart\u{3164}AI",
            "Ramp\u{200B}art AI",
            "Rampart\u{2060}AI\u{FEFF}",
            "Rampart-AI",
            "Rampart_A.I.",
            "Rampart Al",
            "Rampart A1",
            "Rаmpаrt AI",          // Cyrillic а
            "RΑΜΡΑRΤ ΑΙ",          // Greek capitals
            "Ｒａｍｐａｒｔ ＡＩ", // full width
            "𝐑𝐚𝐦𝐩𝐚𝐫𝐭 𝐀𝐈",          // mathematical bold
            "Rámpart AÍ",
            "Ra\u{0301}mpart AI",
        ] {
            assert_eq!(problem(name), Some(NameProblem::Reserved), "{name:?}");
        }
    }

    #[test]
    fn control_characters_and_lengths_keep_their_rules() {
        assert_eq!(problem(""), Some(NameProblem::Empty));
        assert_eq!(problem("   "), Some(NameProblem::Empty));
        assert_eq!(problem(&"x".repeat(33)), Some(NameProblem::TooLong));
        assert_eq!(problem("a\u{7}b"), Some(NameProblem::Control));
        assert_eq!(check_name(&"x".repeat(32)).map(str::len), Ok(32));
    }

    #[test]
    fn chat_drops_what_hides_and_keeps_what_shows() {
        assert_eq!(clean_chat(" gg "), "gg");
        assert_eq!(clean_chat("\u{200B}\u{200B}\u{200B}"), "");
        assert!(!has_visible(&clean_chat("\u{2800}\u{2800}")), "braille blanks show nothing");
        assert_eq!(clean_chat("abc\u{202E}def\u{2066}"), "abcdef");
        assert_eq!(clean_chat("a\u{200B}b\u{3164}c\u{E0041}"), "abc");
        assert_eq!(
            clean_chat("👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}"),
            "👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}",
            "emoji keep their joiners"
        );
        assert_eq!(clean_chat(&format!("a{}b", "\u{0301}".repeat(31))), format!("a{}b", "\u{0301}".repeat(3)));
    }

    #[test]
    fn the_pattern_is_built_from_the_same_classes() {
        let pattern = player_name_pattern();
        assert!(pattern.starts_with("^[") && pattern.ends_with("*$"), "{}", &pattern[..80]);
        assert!(pattern.contains("\\u3164") && pattern.contains("\\u2800") && pattern.contains("\\u202E"));
        assert!(!pattern.contains("\\U"), "no Python-only escapes");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a client sends: an accepted name shows something, holds no bidi control
        /// and no long stack of marks, and checking it again changes nothing.
        #[test]
        fn an_accepted_name_is_visible_and_stable(name in "(?s).{0,40}|[ \\t\\u{3000}\\u{A0}\\u{200B}\\u{3164}\\u{2800}\\u{0301}\\u{202E}a-zA-Z]{0,40}") {
            if let Ok(accepted) = check_name(&name) {
                proptest::prop_assert!(has_visible(accepted));
                proptest::prop_assert!(!accepted.chars().any(is_bidi_control));
                proptest::prop_assert!(!stacks_marks(accepted));
                proptest::prop_assert_eq!(check_name(accepted), Ok(accepted));
            }
        }

        /// A cleaned chat line holds nothing that hides and is stable under cleaning.
        #[test]
        fn clean_chat_is_idempotent(text in "(?s).{0,60}|[ \\t\\u{3000}\\u{A0}\\u{200B}\\u{3164}\\u{0301}\\u{202E}a-z]{0,60}") {
            let once = clean_chat(&text);
            proptest::prop_assert!(!once.chars().any(|c| c.is_control() || is_bidi_control(c)));
            proptest::prop_assert_eq!(clean_chat(&once), once);
        }
    }
}
