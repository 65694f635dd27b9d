//! Themes for the terminal interfaces (`custos replay`, `custos approve`).
//!
//! A theme names **roles**, not widgets: `base` (text and background),
//! `accent`, `warn`, `danger`, `ok`, `muted`, `selection`, `border`,
//! `highlight`, `progress`. A TUI asks for a role's [`Style`] and never picks
//! a colour itself, so one theme file restyles every pane the same way and a
//! broken chain is `danger` wherever it is shown.
//!
//! The built-in themes are the files in `themes/`, embedded in the binary.
//! `--theme NAME` picks one of them; `--theme PATH` (anything with a `/` or
//! ending in `.toml`) reads a file, whose missing roles come from the
//! default theme. Raw TOML goes in, a validated [`Theme`] comes out: an
//! unknown role, an unknown colour or a misspelt attribute is a
//! [`ThemeError`] naming the file and the value, never a silent fallback.

use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The themes shipped in `themes/`, by name.
const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

/// What a piece of the interface means, which decides how it looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Base,
    Accent,
    Warn,
    Danger,
    Ok,
    Muted,
    Selection,
    Border,
    Highlight,
    Progress,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Base,
        Role::Accent,
        Role::Warn,
        Role::Danger,
        Role::Ok,
        Role::Muted,
        Role::Selection,
        Role::Border,
        Role::Highlight,
        Role::Progress,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Base => "base",
            Role::Accent => "accent",
            Role::Warn => "warn",
            Role::Danger => "danger",
            Role::Ok => "ok",
            Role::Muted => "muted",
            Role::Selection => "selection",
            Role::Border => "border",
            Role::Highlight => "highlight",
            Role::Progress => "progress",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("no built-in theme {0:?} (built-in: {names}); give a path to use a theme file", names = builtin_names().join(", "))]
    Unknown(String),
    #[error("cannot read the theme {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the theme {origin} is not valid: {source}")]
    Toml { origin: String, source: toml::de::Error },
    #[error("the theme {origin}: role {role}: {value:?} is not a colour (use a name such as \"red\", \"#rrggbb\", a palette index such as \"208\", or \"reset\")")]
    Color { origin: String, role: &'static str, value: String },
}

/// A validated theme: one style per role.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: [Style; 10],
}

impl Default for Theme {
    fn default() -> Self {
        Self::builtin("default").unwrap_or(Self { name: "default".into(), styles: [Style::new(); 10] })
    }
}

/// The names of the built-in themes.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

impl Theme {
    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        // The built-in files are tested to parse; a failure here is a bug
        // caught by `every_builtin_theme_parses`, not a user error.
        Self::parse(text, &format!("themes/{name}.toml"), None).ok()
    }

    /// `--theme NAME|FILE`: a built-in name, or a path to a theme file.
    pub fn load(spec: &str) -> Result<Theme, ThemeError> {
        let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
        if !looks_like_path {
            return Self::builtin(spec).ok_or_else(|| ThemeError::Unknown(spec.to_owned()));
        }
        let path = Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Read { path: spec.to_owned(), source })?;
        Self::parse(&text, spec, Some(&Theme::default()))
    }

    /// Parses a theme file's text. Roles it leaves out come from `fallback`
    /// (or stay unstyled without one).
    pub fn parse(text: &str, origin: &str, fallback: Option<&Theme>) -> Result<Theme, ThemeError> {
        let raw: RawTheme = toml::from_str(text).map_err(|source| ThemeError::Toml { origin: origin.to_owned(), source })?;
        let mut styles = fallback.map_or([Style::new(); 10], |f| f.styles);
        for role in Role::ALL {
            if let Some(raw_style) = raw.role(role) {
                let slot = styles.get_mut(role.index());
                if let Some(slot) = slot {
                    *slot = raw_style.to_style(origin, role)?;
                }
            }
        }
        let name = raw.name.unwrap_or_else(|| origin.to_owned());
        Ok(Theme { name, styles })
    }

    /// The style of `role`, over the base style (so roles that set only a
    /// foreground keep the theme's background).
    pub fn style(&self, role: Role) -> Style {
        let base = self.styles.first().copied().unwrap_or_default();
        if role == Role::Base {
            return base;
        }
        base.patch(self.styles.get(role.index()).copied().unwrap_or_default())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: Option<String>,
    base: Option<RawStyle>,
    accent: Option<RawStyle>,
    warn: Option<RawStyle>,
    danger: Option<RawStyle>,
    ok: Option<RawStyle>,
    muted: Option<RawStyle>,
    selection: Option<RawStyle>,
    border: Option<RawStyle>,
    highlight: Option<RawStyle>,
    progress: Option<RawStyle>,
}

impl RawTheme {
    fn role(&self, role: Role) -> Option<&RawStyle> {
        match role {
            Role::Base => self.base.as_ref(),
            Role::Accent => self.accent.as_ref(),
            Role::Warn => self.warn.as_ref(),
            Role::Danger => self.danger.as_ref(),
            Role::Ok => self.ok.as_ref(),
            Role::Muted => self.muted.as_ref(),
            Role::Selection => self.selection.as_ref(),
            Role::Border => self.border.as_ref(),
            Role::Highlight => self.highlight.as_ref(),
            Role::Progress => self.progress.as_ref(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

impl RawStyle {
    fn to_style(&self, origin: &str, role: Role) -> Result<Style, ThemeError> {
        let color = |value: &str| {
            parse_color(value).ok_or_else(|| ThemeError::Color { origin: origin.to_owned(), role: role.name(), value: value.to_owned() })
        };
        let mut style = Style::new();
        if let Some(fg) = &self.fg {
            style = style.fg(color(fg)?);
        }
        if let Some(bg) = &self.bg {
            style = style.bg(color(bg)?);
        }
        for (on, modifier) in [
            (self.bold, Modifier::BOLD),
            (self.dim, Modifier::DIM),
            (self.italic, Modifier::ITALIC),
            (self.underline, Modifier::UNDERLINED),
            (self.reversed, Modifier::REVERSED),
        ] {
            if on {
                style = style.add_modifier(modifier);
            }
        }
        Ok(style)
    }
}

/// A colour from a theme file: a name, `#rrggbb`, a palette index, or
/// `reset`.
pub fn parse_color(value: &str) -> Option<Color> {
    let v = value.trim().to_ascii_lowercase();
    if let Some(hex) = v.strip_prefix('#') {
        if hex.len() != 6 || !hex.is_ascii() {
            return None;
        }
        let byte = |i: usize| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
        return Some(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    if let Ok(index) = v.parse::<u8>() {
        return Some(Color::Indexed(index));
    }
    Some(match v.as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_parses_and_sets_every_role() {
        for name in builtin_names() {
            let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).unwrap();
            let theme = Theme::parse(text, name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(theme.name, name);
            for role in Role::ALL {
                assert_ne!(theme.styles[role.index()], Style::new(), "{name} leaves {} unstyled", role.name());
            }
        }
    }

    #[test]
    fn danger_differs_from_base_in_every_builtin_theme() {
        for name in builtin_names() {
            let theme = Theme::builtin(name).unwrap();
            assert_ne!(theme.style(Role::Danger).bg, theme.style(Role::Base).bg, "{name}: danger must stand out");
        }
    }

    #[test]
    fn a_theme_file_inherits_the_roles_it_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "accent = { fg = \"#ff8800\", bold = true }\n").unwrap();
        let theme = Theme::load(path.to_str().unwrap()).unwrap();
        assert_eq!(theme.style(Role::Accent).fg, Some(Color::Rgb(0xff, 0x88, 0)));
        assert_eq!(theme.style(Role::Danger), Theme::default().style(Role::Danger));
    }

    #[rstest::rstest]
    #[case::unknown_role("dnger = { fg = \"red\" }\n", "unknown field `dnger`")]
    #[case::bad_colour("warn = { fg = \"orangeish\" }\n", "role warn: \"orangeish\" is not a colour")]
    #[case::bad_hex("ok = { fg = \"#12345\" }\n", "role ok: \"#12345\"")]
    #[case::bad_attribute("ok = { fg = \"green\", blink = true }\n", "unknown field `blink`")]
    #[case::not_toml("accent = {\n", "is not valid")]
    #[case::wrong_type("accent = \"red\"\n", "is not valid")]
    fn malformed_themes_are_clear_errors(#[case] text: &str, #[case] expected: &str) {
        let err = Theme::parse(text, "mine.toml", None).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("mine.toml"), "{err}");
    }

    #[test]
    fn unknown_names_and_missing_files_are_clear_errors() {
        let err = Theme::load("solarized").unwrap_err().to_string();
        assert!(err.contains("no built-in theme \"solarized\"") && err.contains("high-contrast"), "{err}");
        let err = Theme::load("/nonexistent/theme.toml").unwrap_err().to_string();
        assert!(err.contains("cannot read the theme /nonexistent/theme.toml"), "{err}");
    }

    #[test]
    fn colours_parse_in_every_form() {
        assert_eq!(parse_color("#1E3C5A"), Some(Color::Rgb(30, 60, 90)));
        assert_eq!(parse_color("208"), Some(Color::Indexed(208)));
        assert_eq!(parse_color("LightRed"), Some(Color::LightRed));
        assert_eq!(parse_color("reset"), Some(Color::Reset));
        assert_eq!(parse_color("256"), None);
    }
}
