//! The masking contract as tables: what each detector masks, what stays
//! visible, the corpus of realistic terminal output in `testdata/mask/`,
//! property tests, and the hold-back window.
//!
//! Every secret here is fake: well-formed (right prefix, length, checksum)
//! but generated for these tests or taken from vendors' documentation
//! examples.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use rstest::rstest;

use super::*;

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXVzZXItMDAwMSIsImlhdCI6MTcwMDAwMDAwMH0.FAKEsig_0123456789abcdefghijklmnopqrstuvwxyz-AB";
const GHP: &str = "ghp_FakeToken0123456789abcdefghijklmnopq";
const GITHUB_PAT: &str =
    "github_pat_11FAKE0000000000000000_fakefakefakefakefakefakefakefakefakefakefakefakefakefakeabc";
const GOOGLE: &str = "AIzaSyFAKE-0123456789_abcdefghijklmnopq";
const STRIPE: &str = "sk_live_FAKE0123456789abcdefghij";
const SLACK: &str = "xoxb-123456789012-1234567890123-FakeFakeFakeFakeFake";
const AWS_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn detectors() -> Detectors {
    Detectors::new(&MaskingConfig::default()).unwrap()
}

fn with_email() -> Detectors {
    Detectors::new(&MaskingConfig { email: true, ..MaskingConfig::default() }).unwrap()
}

/// The lines with every finding replaced by `*`, for readable assertions.
fn masked_with(d: &Detectors, lines: &[&str]) -> Vec<String> {
    let mut out: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    for f in d.scan(lines) {
        for b in &mut out[f.line][f.range.clone()] {
            *b = b'*';
        }
    }
    out.into_iter().map(|l| String::from_utf8_lossy(&l).into_owned()).collect()
}

/// The (detector, text) of every finding on a one-line input.
fn found(d: &Detectors, line: &str) -> Vec<(String, String)> {
    d.scan(&[line]).into_iter().map(|f| (f.detector.to_string(), line[f.range].to_string())).collect()
}

fn assert_masks(line: &str, secret: &str, detector: &str) {
    let f = found(&detectors(), line);
    assert!(
        f.iter().any(|(d, t)| d == detector && t == secret),
        "{line:?}: expected {detector} to mask exactly {secret:?}, found {f:?}"
    );
    assert_never_shown_while_written(line, secret);
}

/// A program may write `line` in pieces, and any piece may end inside the
/// secret: at every such end, what is neither masked nor held back shows
/// fewer than 8 characters of the secret in a row.
fn assert_never_shown_while_written(line: &str, secret: &str) {
    let d = detectors();
    // Where the detectors mask it (an account id may hold the same digits).
    let found = d.scan(&[line]).into_iter().map(|f| f.range.start).find(|&at| line.get(at..at + secret.len()) == Some(secret)).expect("the secret is masked");
    // A vendor's public prefix is not secret; its body is. A Telegram
    // token's bot id is the bot's public user id.
    let public = formats::FORMATS.iter().map(|f| f.prefix).chain(["github_pat_", "key-"]).find(|p| secret.starts_with(*p)).map_or(0, str::len);
    let bot_id = secret.find(":AA").filter(|&i| secret[..i].bytes().all(|c| c.is_ascii_digit())).map_or(0, |i| i + 1);
    let start = found + public.max(bot_id);
    for end in start + 1..found + secret.len() {
        let Some(written) = line.get(..end) else { continue };
        let mut hidden = vec![false; end];
        for f in d.scan(&[written]) {
            hidden[f.range].iter_mut().for_each(|h| *h = true);
        }
        if let Some(held) = d.pending_prefix(written) {
            hidden[held..].iter_mut().for_each(|h| *h = true);
        }
        let longest = hidden[start..].split(|h| *h).map(<[bool]>::len).max().unwrap_or(0);
        assert!(longest < 8, "{written:?} shows {longest} characters of {secret:?} while it is being written");
    }
}

fn assert_visible(d: &Detectors, line: &str) {
    let f = found(d, line);
    assert!(f.is_empty(), "{line:?} should stay visible, but found {f:?}");
}

// ---- One table per detector -------------------------------------------------

#[rstest]
#[case::visa("card 4111111111111111 ok", "4111111111111111")]
#[case::visa_spaces("card: 4111 1111 1111 1111.", "4111 1111 1111 1111")]
#[case::visa_dashes("4111-1111-1111-1111", "4111-1111-1111-1111")]
#[case::mastercard("mc=5555555555554444;", "5555555555554444")]
#[case::mastercard_2_series("2223003122003222", "2223003122003222")]
#[case::amex_4_6_5("amex 3782 822463 10005", "3782 822463 10005")]
#[case::discover("6011111111111117", "6011111111111117")]
#[case::jcb("(3530111333300000)", "3530111333300000")]
#[case::diners_4_6_4("3056 930902 5904", "3056 930902 5904")]
#[case::unionpay("6200000000000005", "6200000000000005")]
#[case::visa_13("4222222222222", "4222222222222")]
#[case::in_table_cell("| 42 | 4111111111111111 | 2026 |", "4111111111111111")]
#[case::beside_year("4111111111111111 2026", "4111111111111111")]
fn card_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "card");
}

#[rstest]
#[case::luhn_fails("order 4111111111111112 shipped")]
#[case::unknown_issuer("9111111111111119")]
#[case::amex_wrong_length("3782822463100050")]
#[case::inside_longer_run("411111111111111111110")]
#[case::glued_to_letters("id4111111111111111")]
#[case::glued_after("4111111111111111abc")]
#[case::decimal("0.4111111111111111")]
#[case::ip_like("4111111111111111.1")]
#[case::mixed_groups("4111 1111-1111 1111")]
#[case::odd_groups("41 11 11 11 11 11 11 11")]
#[case::epoch_nanos("1732622400000000000")]
fn card_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[rstest]
#[case::dashed("SSN: 123-45-6789", "123-45-6789")]
#[case::dashed_no_context("employee 078-05-1120 hired", "078-05-1120")]
#[case::spaced_with_context("ssn 123 45 6789", "123 45 6789")]
#[case::bare_with_context("social security number: 123456789", "123456789")]
fn ssn_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "us_ssn");
}

#[rstest]
#[case::area_000("000-45-6789")]
#[case::area_666("666-45-6789")]
#[case::area_900("900-45-6789")]
#[case::area_999("999-45-6789")]
#[case::group_00("123-00-6789")]
#[case::serial_0000("123-45-0000")]
#[case::spaces_without_context("123 45 6789")]
#[case::bare_without_context("pid 123456789")]
#[case::phone("call 555-123-4567")]
#[case::longer("1-123-45-6789")]
#[case::longer_after("123-45-6789-1")]
#[case::mixed_separators("123-45 6789")]
fn ssn_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[rstest]
#[case::compact("IBAN DE89370400440532013000", "DE89370400440532013000")]
#[case::grouped("iban: DE89 3704 0044 0532 0130 00 (EUR)", "DE89 3704 0044 0532 0130 00")]
#[case::gb("GB82WEST12345698765432", "GB82WEST12345698765432")]
#[case::norway_short("NO93 8601 1117 947", "NO93 8601 1117 947")]
#[case::letters_in_bban("FR1420041010050500013M02606", "FR1420041010050500013M02606")]
fn iban_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "iban");
}

#[rstest]
#[case::bad_check("DE89370400440532013001")]
#[case::wrong_length("DE8937040044053201300")]
#[case::unknown_country("XX89370400440532013000")]
#[case::glued("ZDE89370400440532013000")]
#[case::bad_grouping("DE89 37040 044 0532 0130 00")]
fn iban_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[rstest]
#[case::aws_id(AWS_ID, AWS_ID, "aws_access_key_id")]
#[case::aws_sts_id("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A", "aws_access_key_id")]
#[case::aws_secret_ini("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_SECRET, "aws_secret_access_key")]
#[case::aws_secret_env("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_SECRET, "aws_secret_access_key")]
#[case::aws_secret_json(r#"  "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","#, AWS_SECRET, "aws_secret_access_key")]
#[case::aws_secret_text_output(
    "CREDENTIALS\tAKIAIOSFODNN7EXAMPLE\t2026-11-26T12:00:00Z\twJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    AWS_SECRET,
    "aws_secret_access_key"
)]
#[case::github(GHP, GHP, "github_token")]
#[case::github_oauth("token gho_FakeToken0123456789abcdefghijklmnopq.", "gho_FakeToken0123456789abcdefghijklmnopq", "github_token")]
#[case::github_pat(GITHUB_PAT, GITHUB_PAT, "github_token")]
#[case::slack_bot(SLACK, SLACK, "slack_token")]
#[case::slack_user("xoxp-1234567890-0987654321-abcdefFAKE", "xoxp-1234567890-0987654321-abcdefFAKE", "slack_token")]
#[case::slack_hook(
    "curl https://hooks.slack.com/services/T00000000/B00000000/FAKEFAKEFAKEFAKEFAKEFAKE -d x",
    "T00000000/B00000000/FAKEFAKEFAKEFAKEFAKEFAKE",
    "slack_token"
)]
#[case::stripe(STRIPE, STRIPE, "stripe_key")]
#[case::stripe_restricted("rk_test_FAKE0123456789abcdefghijKL", "rk_test_FAKE0123456789abcdefghijKL", "stripe_key")]
#[case::google(GOOGLE, GOOGLE, "google_api_key")]
#[case::jwt(JWT, JWT, "jwt")]
#[case::jwt_bearer("Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXVzZXItMDAwMSIsImlhdCI6MTcwMDAwMDAwMH0.FAKEsig_0123456789abcdefghijklmnopqrstuvwxyz-AB", JWT, "jwt")]
#[case::url_password("postgres://app:Sup3rS3cret@db.internal:5432/app", "Sup3rS3cret", "url_password")]
#[case::url_password_no_user("redis://:hunter2@cache:6379/0", "hunter2", "url_password")]
#[case::url_password_with_at("https://bob:p@ss@example.com/", "p@ss", "url_password")]
fn token_masked(#[case] line: &str, #[case] secret: &str, #[case] detector: &str) {
    assert_masks(line, secret, detector);
}

#[rstest]
#[case::aws_id_too_short("AKIAIOSFODNN7EXAMPL")]
#[case::aws_id_too_long("AKIAIOSFODNN7EXAMPLEX")]
#[case::aws_id_lowercase("akiaiosfodnn7example")]
#[case::aws_id_in_word("XAKIAIOSFODNN7EXAMPLE")]
#[case::github_short("ghp_tooShort123")]
#[case::github_uppercase_prefix("GHP_FakeToken0123456789abcdefghijklmnopq")]
#[case::stripe_publishable("pk_live_FAKE0123456789abcdefghij")]
#[case::stripe_short("sk_live_abc123")]
#[case::stripe_in_word("task_live_FAKE0123456789abcdefghij")]
#[case::google_short("AIzaSyFAKE")]
#[case::slack_no_digits("xoxb-abcdefghijklmnop")]
#[case::jwt_header_not_json("eyJub3QganNvbg.eyJzdWIiOiIxIn0.sig")]
#[case::jwt_two_segments("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0")]
#[case::url_without_password("https://user@example.com/path")]
#[case::url_with_port("http://localhost:8080/health")]
#[case::url_already_masked("postgres://app:****@db/app")]
#[case::url_variable("postgres://app:$PGPASSWORD@db/app")]
#[case::aws_secret_without_context("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")]
fn token_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[rstest]
#[case::shell("password=hunter2", "hunter2")]
#[case::export("export GITHUB_TOKEN_FALLBACK=abc123xyz", "abc123xyz")]
#[case::single_quotes("DB_PASSWORD='pa ss word'", "pa ss word")]
#[case::double_quotes(r#"API_KEY="k-123 456""#, "k-123 456")]
#[case::escaped_quote(r#"secret="a\"b""#, r#"a\"b"#)]
#[case::yaml("  password: s3cr3t-value", "s3cr3t-value")]
#[case::yaml_comment("  client_secret: abcdef # rotate monthly", "abcdef")]
#[case::json(r#"{"user": "bob", "password": "hunter2", "n": 1}"#, "hunter2")]
#[case::json_compact(r#"{"client_secret":"cs-0001"}"#, "cs-0001")]
#[case::toml("token = \"t0k3n\"", "t0k3n")]
#[case::env_upper("PASSWD:letmein", "letmein")]
#[case::yaml_upper("PASSWD: letmein", "letmein")]
#[case::pwd("Server=db;Uid=app;Pwd=Zq8x!;", "Zq8x!")]
#[case::apikey("apikey=0123abcd", "0123abcd")]
#[case::private_key("private_key = abc", "abc")]
#[case::access_key("ACCESS_KEY=xyz", "xyz")]
#[case::auth("auth: dXNlcjpwYXNz", "dXNlcjpwYXNz")]
#[case::header_bearer("Authorization: Bearer abc.def", "abc.def")]
#[case::header_basic("> Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz")]
#[case::x_api_key("X-API-Key: k_live_0001", "k_live_0001")]
#[case::flag_equals("mysql --password=hunter2 -u root", "hunter2")]
#[case::flag_space("docker login --password hunter2 -u me", "hunter2")]
#[case::query_string("GET /login?user=bob&password=hunter2&next=/", "hunter2")]
#[case::unterminated_quote("PASSWORD=\"still typing", "still typing")]
#[case::db_pass("DB_PASS=x9", "x9")]
#[case::numeric_password("password: 123456", "123456")]
fn assignment_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "assignment");
}

#[rstest]
#[case::prompt("Password: ")]
#[case::prompt_no_space("Password:")]
#[case::sudo_prompt("[sudo] password for alice: ")]
#[case::empty("password=")]
#[case::empty_quotes("password=\"\"")]
#[case::expiry("password_expiry=30")]
#[case::token_type("token_type: bearer")]
#[case::secret_name("  secretName: db-credentials")]
#[case::key_id("aws_access_key_id = none")]
#[case::boolean("requires_password: true")]
#[case::null(r#""token": null"#)]
#[case::variable("PASSWORD=$DB_PASSWORD")]
#[case::template("password: {{ .Values.password }}")]
#[case::placeholder("password=<your password>")]
#[case::already_masked("password: ********")]
#[case::working_directory("PWD=/home/alice")]
#[case::old_working_directory("OLDPWD=/tmp")]
#[case::stdin_flag("docker login --password-stdin")]
#[case::flag_then_flag("mysql --password -u root")]
#[case::comparison("if token == other")]
#[case::rust_path("let t = Token::new();")]
#[case::passport("passport: valid")]
#[case::keyboard("keyboard: us")]
#[case::colon_no_space("auth:basic")]
fn assignment_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[test]
fn email_is_off_by_default_and_on_with_its_switch() {
    let line = "From: alice.smith@example.co.uk";
    assert_visible(&detectors(), line);
    assert_eq!(found(&with_email(), line), vec![("email".to_string(), "alice.smith@example.co.uk".to_string())]);
    assert_visible(&with_email(), "alice@host:~$ ls");
}

// ---- Look-alikes that must stay visible ------------------------------------

#[rstest]
#[case::uuid("request 550e8400-e29b-41d4-a716-446655440000 done")]
#[case::numeric_uuid("12345678-1234-1234-1234-123456789012")]
#[case::git_sha("commit 3f786850e387550fdab836ed7e6dc881de23001b")]
#[case::git_short_sha("3f78685 Fix the thing (#1234)")]
#[case::sha256("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
#[case::timestamp("2026-11-26T12:00:00.123456789Z INFO started")]
#[case::date_time("Thu Nov 26 12:00:00 UTC 2026")]
#[case::epoch_millis("ts=1732622400000")]
#[case::ipv4("inet 192.168.100.200/24 brd 192.168.100.255")]
#[case::ipv6("inet6 2001:db8:85a3::8a2e:370:7334/64")]
#[case::version("rustc 1.85.0 (4d91de4e4 2025-02-17)")]
#[case::semver("custos v0.1.0-alpha.4111111111111111")]
#[case::public_key_pem("-----BEGIN PUBLIC KEY-----")]
#[case::certificate("-----BEGIN CERTIFICATE-----")]
#[case::ssh_public_key(
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7vbqajDhA5FAKEFAKEFAKE0123456789abcdefghijklmnopqrstuvwxyz alice@laptop"
)]
#[case::ssh_ed25519("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE alice@laptop")]
#[case::password_prompt("Password:")]
#[case::base64_without_context("data=SGVsbG8sIHdvcmxkISBUaGlzIGlzIG5vdCBhIHNlY3JldC4=")]
#[case::shell_prompt("alice@web01:~$ ls -la /etc")]
#[case::root_prompt("[root@db01 /var/lib/pgsql]# systemctl status postgresql")]
#[case::ls_output("-rw-r--r--  1 root root  1234567 Nov 26 12:00 big.log")]
#[case::ps_output("root      4111  0.0  0.1 169084 13136 ?        Ss   Nov25   0:07 /sbin/init")]
#[case::order_number("Order #1234567890123 confirmed")]
#[case::phone("+1 (555) 123-4567")]
#[case::du_output("4111111\t./target")]
#[case::hex_dump("00000000  7f 45 4c 46 02 01 01 00  00 00 00 00 00 00 00 00  |.ELF............|")]
#[case::keychain_words("The key to success is a secret handshake")]
#[case::aws_configure_list("secret_key     ****************EKEY shared-credentials-file")]
fn look_alikes_stay_visible(#[case] line: &str) {
    assert_visible(&with_email(), line);
}

// ---- Multi-line context -----------------------------------------------------

#[test]
fn pem_private_key_body_is_masked_and_markers_stay() {
    let lines = [
        "$ cat id_rsa",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAfakefakefakefakefakefakefakefakefakefakefakefake",
        "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFy==",
        "-----END RSA PRIVATE KEY-----",
        "$ echo done",
    ];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[1], lines[1]);
    assert!(out[2].chars().all(|c| c == '*'));
    assert!(out[3].chars().all(|c| c == '*'));
    assert_eq!(out[4], lines[4]);
    assert_eq!(out[5], lines[5]);
}

#[test]
fn a_truncated_pem_block_ends_at_the_prompt() {
    let lines = ["-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "alice@web01:~$ ls"];
    let out = masked_with(&detectors(), &lines);
    assert!(out[1].chars().all(|c| c == '*'));
    assert_eq!(out[2], lines[2]);
}

#[test]
fn pem_headers_and_line_numbers_are_masked() {
    let lines = [
        "     1\t-----BEGIN EC PRIVATE KEY-----",
        "     2\tProc-Type: 4,ENCRYPTED",
        "     3\tDEK-Info: AES-128-CBC,0123456789ABCDEF",
        "     4\t",
        "     5\tMHcCAQEEIFAKEFAKEFAKE+/=",
        "     6\t-----END EC PRIVATE KEY-----",
    ];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[0], lines[0]);
    assert_eq!(out[1], "     2\t**********************");
    assert_eq!(out[2], format!("     3\t{}", "*".repeat("DEK-Info: AES-128-CBC,0123456789ABCDEF".len())));
    assert_eq!(out[4], "     5\t************************");
    assert_eq!(out[5], lines[5]);
}

#[test]
fn a_pem_key_on_one_line_is_masked_after_the_marker() {
    let line = r#"  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANFAKE\n-----END PRIVATE KEY-----\n","#;
    let f = found(&detectors(), line);
    assert!(f.iter().any(|(d, t)| d == "pem_private_key" && t == r"\nMIIEvQIBADANFAKE\n"), "{f:?}");
    // The same value under a secret-named key is masked whole as well.
    assert!(f.iter().any(|(d, t)| d == "assignment" && t.starts_with("-----BEGIN")), "{f:?}");
}

#[test]
fn certificates_stay_visible() {
    let lines =
        ["-----BEGIN CERTIFICATE-----", "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ", "-----END CERTIFICATE-----"];
    assert!(detectors().scan(&lines).is_empty());
}

#[test]
fn context_carries_across_scan_calls() {
    let d = detectors();
    let mut ctx = Context::new();
    assert!(d.scan_from(&mut ctx, &["-----BEGIN OPENSSH PRIVATE KEY-----"]).is_empty());
    // The next frame starts below the BEGIN line, which has scrolled off.
    let frame = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW", "-----END OPENSSH PRIVATE KEY-----"];
    let f = d.scan_from(&mut ctx.clone(), &frame);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].line, 0);
    assert_eq!(&*f[0].detector, "pem_private_key");
    // Without the context the same frame shows nothing.
    assert!(d.scan(&frame).is_empty());
}

#[test]
fn kubectl_yaml_secret_data_is_masked_though_kind_comes_after() {
    let lines = [
        "apiVersion: v1",
        "data:",
        "  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
        "  username: YWRtaW4=",
        "kind: Secret",
        "metadata:",
        "  name: db-credentials",
        "type: Opaque",
    ];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[2], "  tls.crt: ************************************");
    assert_eq!(out[3], "  username: ********");
    assert_eq!(out[6], lines[6]);
}

#[test]
fn configmap_data_stays_visible() {
    let lines = ["apiVersion: v1", "data:", "  mode: dGVzdA==", "  level: debug", "kind: ConfigMap"];
    assert!(detectors().scan(&lines).is_empty());
}

#[test]
fn yaml_data_without_any_kind_stays_visible() {
    let lines = ["response:", "  data:", "    id: abcd", "  status: ok"];
    assert!(detectors().scan(&lines).is_empty());
}

#[test]
fn secret_data_whose_kind_is_off_screen_is_masked_when_base64() {
    let lines = ["apiVersion: v1", "data:", "  token: dG9rZW4tdmFsdWU=", "  note: plain words here"];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[2], "  token: ****************");
    assert_eq!(out[3], lines[3]);
}

#[test]
fn string_data_and_block_scalars_are_masked() {
    let lines = [
        "apiVersion: v1",
        "kind: Secret",
        "stringData:",
        "  config.json: |",
        "    {\"user\": \"app\", \"pw\": \"x\"}",
        "  plain: hello world",
        "type: Opaque",
    ];
    let out = masked_with(&detectors(), &lines);
    assert!(out[4].trim().chars().all(|c| c == '*'), "{}", out[4]);
    assert_eq!(out[5], "  plain: ***********");
    assert_eq!(out[6], lines[6]);
}

#[test]
fn kubectl_json_secret_data_is_masked() {
    let lines = [
        "{",
        "    \"apiVersion\": \"v1\",",
        "    \"data\": {",
        "        \"ca.crt\": \"LS0tLS1CRUdJTg==\",",
        "        \"namespace\": \"ZGVmYXVsdA==\"",
        "    },",
        "    \"kind\": \"Secret\",",
        "    \"metadata\": {",
        "        \"name\": \"default-token\"",
        "    }",
        "}",
    ];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[3], "        \"ca.crt\": \"****************\",");
    assert_eq!(out[4], "        \"namespace\": \"************\"");
    assert_eq!(out[8], lines[8]);
}

#[test]
fn one_line_json_secret_is_masked() {
    let line = r#"{"apiVersion":"v1","data":{"password":"aHVudGVyMg==","user":"Ym9i"},"kind":"Secret"}"#;
    let f = found(&detectors(), line);
    let texts: BTreeSet<&str> = f.iter().map(|(_, t)| t.as_str()).collect();
    assert!(texts.contains("aHVudGVyMg==") && texts.contains("Ym9i"), "{f:?}");
    let line = r#"{"data":{"user":"Ym9i"},"status":"ok"}"#;
    assert_visible(&detectors(), line);
}

#[test]
fn psql_password_column_is_masked_until_the_table_ends() {
    let lines = [
        " id | username |           password           | created",
        "----+----------+------------------------------+---------",
        "  1 | alice    | $2b$12$FAKEFAKEFAKEFAKEFAKEFAKE | today",
        "  2 | bob      | hunter2                      | today",
        "(2 rows)",
        "",
        "db=> select 1 | 2;",
    ];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[0], lines[0]);
    assert_eq!(out[2], "  1 | alice    | ******************************* | today");
    assert_eq!(out[3], "  2 | bob      | *******                      | today");
    assert_eq!(out[4], lines[4]);
    assert_eq!(out[6], lines[6]);
}

#[test]
fn a_pipe_line_without_separator_is_not_a_table() {
    let lines = ["echo password | base64", "cGFzc3dvcmQK | other"];
    let out = masked_with(&detectors(), &lines);
    assert_eq!(out[1], lines[1]);
}

#[test]
fn mysql_and_psql_expanded_tables() {
    let mysql = [
        "+----+----------+-------------+",
        "| id | user     | api_token   |",
        "+----+----------+-------------+",
        "|  1 | svc      | tok-0001    |",
        "+----+----------+-------------+",
        "1 row in set (0.00 sec)",
    ];
    let out = masked_with(&detectors(), &mysql);
    assert_eq!(out[3], "|  1 | svc      | ********    |");
    let expanded = ["-[ RECORD 1 ]----------", "id       | 1", "password | hunter2", "-[ RECORD 2 ]----------", "password | letmein", ""];
    let out = masked_with(&detectors(), &expanded);
    assert_eq!(out[1], expanded[1]);
    assert_eq!(out[2], "password | *******");
    assert_eq!(out[4], "password | *******");
}

// ---- Config and custom rules ------------------------------------------------

fn custom(rule: CustomRule) -> Detectors {
    let mut c = MaskingConfig::default();
    c.custom.push(rule);
    Detectors::new(&c).unwrap()
}

fn rule(name: &str, regex: &str) -> CustomRule {
    CustomRule { name: name.into(), regex: regex.into(), checksum: None, context: None, group: None }
}

#[test]
fn custom_rules_match_with_context_checksum_and_group() {
    let d = custom(rule("ticket", "TKT-[0-9A-F]{16}"));
    assert_eq!(found(&d, "see TKT-0123456789ABCDEF"), vec![("ticket".into(), "TKT-0123456789ABCDEF".into())]);

    let d = custom(CustomRule { context: Some("Employee".into()), ..rule("emp", r"\b\d{6}\b") });
    assert_eq!(found(&d, "EMPLOYEE id 123456").len(), 1);
    assert!(found(&d, "build 123456").is_empty());

    let d = custom(CustomRule { checksum: Some(Checksum::Luhn), ..rule("acct", r"\b\d{11}\b") });
    assert_eq!(found(&d, "acct 79927398713 and 79927398710"), vec![("acct".into(), "79927398713".into())]);

    let d = custom(CustomRule { group: Some(Group::Name("v".into())), ..rule("pin", r"PIN (?P<v>\d{4})") });
    assert_eq!(found(&d, "PIN 1234"), vec![("pin".into(), "1234".into())]);
    let d = custom(CustomRule { group: Some(Group::Index(1)), ..rule("pin", r"PIN (\d{4})") });
    assert_eq!(found(&d, "PIN 1234"), vec![("pin".into(), "1234".into())]);
}

#[test]
fn a_bad_custom_rule_built_in_code_is_a_clear_error() {
    let mut c = MaskingConfig::default();
    c.custom.push(rule("broken", "a("));
    let err = Detectors::new(&c).unwrap_err().to_string();
    assert!(err.contains("\"broken\"") && err.contains("does not compile"), "{err}");
}

#[test]
fn disabled_detectors_and_masking_off_find_nothing() {
    let mut c = MaskingConfig::default();
    c.detectors.remove(&DetectorId::Card);
    let d = Detectors::new(&c).unwrap();
    assert_visible(&d, "4111111111111111");
    assert!(!found(&d, GHP).is_empty());
    let off = Detectors::new(&MaskingConfig { enabled: false, ..MaskingConfig::default() }).unwrap();
    assert_visible(&off, GHP);
    assert_eq!(off.pending_prefix("ghp_abc"), None);
}

#[test]
fn duplicate_spans_keep_the_specific_name() {
    let f = found(&detectors(), &format!("GITHUB_TOKEN={GHP}"));
    assert_eq!(f, vec![("github_token".to_string(), GHP.to_string())]);
}

#[test]
fn fingerprints_are_stable_short_and_distinct() {
    let a = fingerprint("hunter2");
    assert_eq!(a.len(), 12);
    assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a, fingerprint("hunter2"));
    assert_ne!(a, fingerprint("hunter3"));
    assert!(!a.contains("hunter2"));
    // A test vector, so a second implementation can check itself.
    assert_eq!(fingerprint(""), "036ce588218e");
}

// ---- The corpus ---------------------------------------------------------------

/// Each `testdata/mask/NAME.txt` has a `NAME.expect` beside it: lines
/// `mask: TEXT` (every occurrence of TEXT must be entirely masked) and
/// `keep: TEXT` (no character of any occurrence may be masked).
#[rstest]
#[case("psql")]
#[case("env")]
#[case("kubectl_secret_yaml")]
#[case("kubectl_secret_json")]
#[case("aws")]
#[case("json_logs")]
#[case("id_rsa")]
#[case("cards")]
#[case("shell_session")]
#[case("cli_and_monitors")]
#[case("cloud_connections")]
fn corpus(#[case] name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/mask");
    let text = std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap();
    let expect = std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let findings = detectors().scan(&lines);
    let mut covered: Vec<Vec<bool>> = lines.iter().map(|l| vec![false; l.len()]).collect();
    for f in &findings {
        for c in &mut covered[f.line][f.range.clone()] {
            *c = true;
        }
    }
    let mut failures = Vec::new();
    let (mut masks, mut keeps) = (0, 0);
    for rule in expect.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let (kind, needle) = rule.split_once(": ").unwrap_or_else(|| panic!("bad expectation {rule:?}"));
        let mut seen = false;
        for (i, line) in lines.iter().enumerate() {
            for (at, _) in line.match_indices(needle) {
                seen = true;
                let cells = &covered[i][at..at + needle.len()];
                match kind {
                    "mask" if !cells.iter().all(|c| *c) => failures.push(format!("line {}: {needle:?} not masked: {line}", i + 1)),
                    "keep" if cells.iter().any(|c| *c) => failures.push(format!("line {}: {needle:?} masked: {line}", i + 1)),
                    "mask" | "keep" => {}
                    _ => panic!("bad expectation kind {kind:?}"),
                }
            }
        }
        assert!(seen, "{name}.expect: {needle:?} does not occur in {name}.txt");
        if kind == "mask" {
            masks += 1;
        } else {
            keeps += 1;
        }
    }
    assert!(masks > 0 && keeps > 0, "{name}.expect should say what is masked and what is kept");
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

// ---- Properties -----------------------------------------------------------------

const SECRETS: &[&str] = &[
    "4111111111111111",
    "5555 5555 5555 4444",
    "123-45-6789",
    "DE89370400440532013000",
    AWS_ID,
    GHP,
    GITHUB_PAT,
    SLACK,
    STRIPE,
    GOOGLE,
    JWT,
];

/// Printable ASCII without the characters that would join onto a secret.
fn filler() -> impl Strategy<Value = String> {
    "[ -~]{0,60}"
}

proptest! {
    #[test]
    fn findings_are_non_empty_on_char_boundaries_and_deterministic(
        lines in prop::collection::vec("(?s).{0,80}", 0..8),
    ) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let d = detectors();
        let first = d.scan(&refs);
        for f in &first {
            let line = refs[f.line];
            prop_assert!(f.range.start < f.range.end && f.range.end <= line.len());
            prop_assert!(line.is_char_boundary(f.range.start) && line.is_char_boundary(f.range.end));
        }
        prop_assert_eq!(&first, &d.scan(&refs));
        for line in &refs {
            if let Some(at) = d.pending_prefix(line) {
                prop_assert!(at < line.len() && line.is_char_boundary(at));
            }
        }
    }

    #[test]
    fn findings_hold_on_text_that_looks_like_secrets(
        parts in prop::collection::vec(prop::sample::select(vec![
            "4111", " ", "-", "ghp_", "AKIA", "password", "=", ": ", "\"", "'", "eyJ", ".", "://", "@",
            "|", "data:", "  ", "-----BEGIN PRIVATE KEY-----", "xoxb-", "DE89", "0", "9", "Secret", "é", "漢",
        ]), 0..40),
    ) {
        let line: String = parts.concat();
        let d = detectors();
        for f in d.scan(&[line.as_str()]) {
            prop_assert!(f.range.start < f.range.end && line.is_char_boundary(f.range.start) && line.is_char_boundary(f.range.end));
        }
    }

    #[test]
    fn a_secret_anywhere_in_surrounding_text_is_found(
        before in filler(),
        after in filler(),
        secret in prop::sample::select(SECRETS),
    ) {
        let line = format!("{before} {secret} {after}");
        let at = before.len() + 1;
        let d = detectors();
        let findings = d.scan(&[line.as_str()]);
        let covered = (at..at + secret.len()).all(|i| findings.iter().any(|f| f.range.contains(&i)));
        prop_assert!(covered, "{:?} not masked in {:?}: {:?}", secret, line, findings);
    }

    #[test]
    fn every_growing_prefix_of_a_token_is_held(
        (secret, prefix_len) in prop::sample::select(vec![(GHP, 4), (STRIPE, 8), (AWS_ID, 4), (GOOGLE, 4), (JWT, 3), (SLACK, 5)]),
        cut in 0usize..200,
        before in "[a-z ]{0,20}",
    ) {
        let d = detectors();
        let cut = prefix_len + cut % (secret.len() - prefix_len);
        let line = format!("{before} {}", &secret[..cut]);
        let masked_now = !d.scan(&[line.as_str()]).is_empty();
        prop_assert!(masked_now || d.pending_prefix(&line).is_some(), "{:?} neither masked nor held", line);
    }
}

// ---- The hold-back window -----------------------------------------------------

#[rstest]
#[case::github("$ echo ghp_abc", 7)]
#[case::github_prefix_only("token ghp_", 6)]
#[case::github_pat("github_pat_11FAKE", 0)]
#[case::aws("AKIA12", 0)]
#[case::stripe("key: sk_live_abc", 5)]
#[case::slack("xoxb-1234", 0)]
#[case::google("AIzaSy", 0)]
#[case::jwt("Bearer eyJhbGciOi", 7)]
#[case::jwt_two_segments("eyJhbGciOiJIUzI1NiJ9.eyJzdWIi", 0)]
#[case::card_digits("card 411111", 5)]
#[case::card_grouped("4111 1111 11", 0)]
#[case::card_trailing_space("4111 1111 ", 0)]
#[case::ssn_partial("SSN 123-45-67", 4)]
#[case::ssn_dash("123-45-", 0)]
#[case::iban("IBAN DE89 3704", 5)]
#[case::password("password=hun", 9)]
#[case::password_quoted("PASSWORD=\"hun", 10)]
#[case::yaml_token("  api_token: abc", 13)]
#[case::json(r#"{"secret": "abc"#, 12)]
#[case::pem("-----BEGIN ", 0)]
#[case::pem_label("x -----BEGIN RSA PRI", 2)]
#[case::url_password("postgres://app:Sup3r", 15)]
#[case::slack_hook("https://hooks.slack.com/services/T000", 33)]
#[case::azure_account_key("AccountName=myacct;AccountKey=RmFr", 30)]
#[case::service_bus_key("Endpoint=sb://ns1/;SharedAccessKey=RmFrZVNl", 35)]
#[case::sas_sig("https://a.blob.core.windows.net/b?sv=2022-11-02&sr=b&sig=RmFrZVNh", 57)]
#[case::twilio_sid("twilio api:core:keys:create SK01234", 28)]
#[case::cohere("cohere key: q8Zr", 12)]
#[case::postmark_uuid("Postmark server 0a1b2c3d-4e", 16)]
#[case::ssn_bare("social security number: 1234", 24)]
#[case::ssn_spaced("SSN 123 45 6", 4)]
#[case::telegram("bot 123456789:AAaB3d", 14)]
#[case::teams_hook("https://contoso.webhook.office.com/webhookb2/0a1b2c3d-0000@72f9", 45)]
#[case::presigned("https://b.s3.amazonaws.com/k?X-Amz-Credential=x&X-Amz-Signature=abc12", 64)]
fn pending_holds_growing_secrets(#[case] line: &str, #[case] from: usize) {
    assert_eq!(detectors().pending_prefix(line), Some(from), "{line:?}");
}

#[rstest]
#[case::empty("")]
#[case::prompt("alice@web01:~$ ")]
#[case::command("alice@web01:~$ ls -la /etc")]
#[case::gh_cli("$ gh pr list")]
#[case::words("the quick brown fox")]
#[case::password_prompt("Password: ")]
#[case::empty_value("password=")]
#[case::short_number("exit 127")]
#[case::year("2026")]
#[case::epoch("1732622400")]
#[case::date("2026-11-26")]
#[case::time("12:00:01")]
#[case::ip("192.168.1.20")]
#[case::unknown_iin("987654321")]
#[case::url_port("http://localhost:8080")]
#[case::url_path("https://example.com/path")]
#[case::table_separator("----+-------")]
#[case::complete_begin("-----BEGIN CERTIFICATE-----")]
#[case::closed_value("password=\"x\" ")]
#[case::akia_in_word("MAKIA12")]
#[case::ghp_in_word("xghp_abc")]
#[case::account_key_closed("AccountKey=abc;EndpointSuffix=core.windows.net")]
#[case::sig_without_sas("https://example.com/?sig=abc")]
#[case::key_in_a_word("MyAccountKey=abc")]
#[case::vendor_words("$ cohere models list")]
#[case::vendor_hex_word("twilio phone-numbers:update deadbeef")]
#[case::bare_digits_unnamed("order 1234")]
fn pending_leaves_ordinary_text_alone(#[case] line: &str) {
    assert_eq!(detectors().pending_prefix(line), None, "{line:?}");
}

// ---- Issue #17: the categories that leaked ------------------------------------
//
// Each family below takes several tools and several spellings of one
// category, as real tools print it and real people type it.

#[rstest]
#[case::mysql_glued("$ mysql -uroot -pS3cretPass db", "S3cretPass")]
#[case::mysql_glued_quoted("$ mysql -u root -p'S3cret Pass' db", "S3cret Pass")]
#[case::mysqldump("mysqldump -h db -u app -pS3cretPass --all-databases > dump.sql", "S3cretPass")]
#[case::mariadb("mariadb -uapp -p\"S3cret;Pass\" -e 'select 1'", "S3cret;Pass")]
#[case::mongo_spaced("$ mongo -u admin -p S3cretPass --authenticationDatabase admin", "S3cretPass")]
#[case::mongosh_glued("mongosh -u admin -pS3cretPass", "S3cretPass")]
#[case::redis_cli("$ redis-cli -h cache -a S3cretPass ping", "S3cretPass")]
#[case::valkey_cli("valkey-cli -a 'S3cretPass' info", "S3cretPass")]
#[case::sqlcmd("$ sqlcmd -S db -U sa -P S3cretPass -Q \"select 1\"", "S3cretPass")]
#[case::sqlcmd_glued("sqlcmd -S db -U sa -PS3cretPass", "S3cretPass")]
#[case::sshpass("sshpass -p S3cretPass ssh deploy@web01", "S3cretPass")]
#[case::docker_login("docker login -u bot -p S3cretPass registry.example.com", "S3cretPass")]
#[case::podman_login("podman login registry.example.com -u bot -p S3cretPass", "S3cretPass")]
#[case::curl_user("$ curl -u admin:S3cretPass https://api.example.com", "S3cretPass")]
#[case::curl_user_long("curl -sS --user 'admin:S3cret Pass' https://api.example.com", "S3cret Pass")]
#[case::smbclient("smbclient //fs/share -U alice%S3cretPass", "S3cretPass")]
#[case::openssl("openssl pkcs12 -export -in c.pem -passout pass:S3cretPass -out c.p12", "S3cretPass")]
#[case::full_path("/usr/bin/mysql -uroot -pS3cretPass", "S3cretPass")]
#[case::ps_aux("root      4242  0.0  0.1 169084 13136 ?  S  12:00  0:00 mysql -uroot -pS3cretPass -h db.internal", "S3cretPass")]
#[case::top_row_cut("  4242 root      20   0  169084  13136   8000 S   0.0  0.1   0:00.01 redis-cli -a S3cretPa", "S3cretPa")]
#[case::htop_row_cut(" 4242 root  20  0  166M 13136  8000 S  0.0  0.1  0:00.01 /usr/bin/mysql -uroot -pS3cr", "S3cr")]
fn command_line_password_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "cli_password");
}

#[rstest]
#[case::pgpassword("$ PGPASSWORD=S3cretPass psql -h db -U app", "S3cretPass")]
#[case::password_equals("mysql -u root --password=S3cretPass db", "S3cretPass")]
#[case::token_equals("app --token=tok_S3cretValue", "tok_S3cretValue")]
#[case::api_key_space("app --api-key abc123S3cret", "abc123S3cret")]
#[case::client_secret("az login --service-principal -u id --client-secret CS3cretValue", "CS3cretValue")]
#[case::access_token("app --access-token AT3cretValue", "AT3cretValue")]
#[case::secret_space("app --secret S3cretValue", "S3cretValue")]
#[case::one_dash_long("keytool -list -keystore ks.jks -storepass S3cretPass", "S3cretPass")]
#[case::redis_pass("redis-cli --pass S3cretPass", "S3cretPass")]
#[case::ps_password_flag("app   99  0.0 0.1 /opt/app/bin/server --db-password=S3cretPass --port 80", "S3cretPass")]
fn secret_named_options_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "assignment");
}

#[rstest]
#[case::mysql_prompts("$ mysql -u root -p db")]
#[case::mysql_masked_argv("root 4242 0.0 0.1 mysql -uroot -px -h db")]
#[case::docker_run_port("docker run -p 8080:80 nginx")]
#[case::docker_ps_port("docker ps -a -p")]
#[case::curl_user_no_password("curl -u admin https://api.example.com")]
#[case::mysql_in_word("mymysql -pS3cretPass")]
#[case::mongo_flag_then_flag("mongo -u admin -p --authenticationDatabase admin")]
#[case::redis_variable("redis-cli -a \"$REDIS_PASSWORD\" ping")]
#[case::password_stdin("echo $PW | docker login -u bot --password-stdin")]
#[case::help_metavar("  -p, --password=PASSWORD   Password to use when connecting")]
#[case::help_type("      --token string   Bearer token for authentication to the API server")]
#[case::help_bracket("  --password[=name]  Password to use")]
fn command_line_look_alikes_stay_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[rstest]
#[case::azure_storage(
    "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFy+/==;EndpointSuffix=core.windows.net",
    "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFy+/=="
)]
#[case::azure_sas_url(
    "https://myacct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-31T00:00:00Z&spr=https&sig=AbCdEfGh1234567890abcdefGHIJKL%2Bmnop%3D",
    "AbCdEfGh1234567890abcdefGHIJKL%2Bmnop%3D"
)]
#[case::sas_in_connection_string(
    "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=AbCdEfGh1234567890abcdef%3D",
    "AbCdEfGh1234567890abcdef%3D"
)]
#[case::teams_workflow(
    "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=Q1w2E3r4T5y6U7i8O9p0AsDfGhJkLzXc",
    "Q1w2E3r4T5y6U7i8O9p0AsDfGhJkLzXc"
)]
#[case::aws_presigned(
    "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)]
#[case::gcs_signed("https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=a1b2c3d4e5f60718293a4b5c6d7e8f90", "a1b2c3d4e5f60718293a4b5c6d7e8f90")]
#[case::cloudfront("https://d1.cloudfront.net/v.mp4?Expires=1767225600&Signature=Ab~Cd3Ef-Gh4Ij5Kl6Mn7Op8Qr9St0Uv__&Key-Pair-Id=K2JCJMDEHXQW5F", "Ab~Cd3Ef-Gh4Ij5Kl6Mn7Op8Qr9St0Uv__")]
#[case::sqlplus("$ sqlplus app/S3cretPass@db:1521/ORCL", "S3cretPass")]
#[case::sqlplus_silent("sqlplus -s -L app/S3cretPass@ORCL @script.sql", "S3cretPass")]
#[case::expdp("expdp system/S3cretPass directory=dp dumpfile=x.dmp", "S3cretPass")]
#[case::jdbc_oracle_thin("jdbc:oracle:thin:app/S3cretPass@db:1521/ORCL", "S3cretPass")]
fn connection_string_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "connection_string");
}

#[rstest]
#[case::service_bus(
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm8=",
    "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm8="
)]
#[case::event_hub(
    "Endpoint=sb://eh.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCd=;EntityPath=events",
    "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCd="
)]
fn shared_access_key_masked_by_some_detector(#[case] line: &str, #[case] secret: &str) {
    let f = found(&detectors(), line);
    assert!(f.iter().any(|(_, t)| t == secret), "{line:?}: {secret:?} not masked: {f:?}");
    assert!(line.contains("SharedAccessKeyName=") && !f.iter().any(|(_, t)| t.contains("RootManage") || t == "send"));
}

#[rstest]
#[case::postgres("postgres://app:S3cretPass@db:5432/app")]
#[case::postgresql("postgresql://app:S3cretPass@db:5432/app?sslmode=require")]
#[case::mysql("mysql://app:S3cretPass@db/app")]
#[case::mariadb("mariadb://app:S3cretPass@db/app")]
#[case::mongodb("mongodb://root:S3cretPass@m1:27017,m2:27017/?replicaSet=rs0")]
#[case::mongodb_srv("mongosh \"mongodb+srv://admin:S3cretPass@cluster0.abcde.mongodb.net/test\"")]
#[case::redis("redis://default:S3cretPass@cache:6379/0")]
#[case::rediss("rediss://:S3cretPass@cache.example.com:6380")]
#[case::amqp("amqp://guest:S3cretPass@rabbit:5672/")]
#[case::amqps("AMQP_URL=amqps://user:S3cretPass@mq.example.com/vhost")]
#[case::mqtt("mqtt://sensor:S3cretPass@broker:1883")]
#[case::kafka_sasl("kafka+sasl://svc:S3cretPass@broker:9093")]
#[case::jdbc_postgres("jdbc:postgresql://app:S3cretPass@db:5432/app")]
#[case::sqlserver("sqlserver://sa:S3cretPass@db:1433?database=app")]
#[case::clickhouse("clickhouse://default:S3cretPass@ch:9000/default")]
#[case::nats("nats://svc:S3cretPass@nats:4222")]
#[case::ldap("ldaps://cn=admin:S3cretPass@ldap.example.com")]
#[case::ftp("ftp://anon:S3cretPass@ftp.example.com/pub")]
#[case::smtp("smtp://mailer:S3cretPass@smtp.example.com:587")]
#[case::https("git clone https://alice:S3cretPass@git.example.com/repo.git")]
fn uri_credentials_mask_the_password_and_keep_user_and_host(#[case] line: &str) {
    let out = masked_with(&detectors(), &[line]).remove(0);
    assert!(!out.contains("S3cretPass"), "{line:?} -> {out:?}");
    assert_eq!(out.replace("**********", "S3cretPass"), line, "only the password is masked");
}

#[rstest]
#[case::jdbc_mysql_query("jdbc:mysql://db:3306/app?user=app&password=S3cretPass")]
#[case::jdbc_sqlserver("jdbc:sqlserver://db:1433;databaseName=app;user=sa;password=S3cretPass;")]
#[case::ado_net("Server=tcp:db.database.windows.net,1433;Initial Catalog=app;User ID=sa;Password=S3cretPass;Encrypt=True;")]
#[case::kafka_jaas("sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"S3cretPass\";")]
fn connection_string_parameters_mask_the_password(#[case] line: &str) {
    let out = masked_with(&detectors(), &[line]).remove(0);
    assert_eq!(out.replace("**********", "S3cretPass"), line, "{out}");
    assert_ne!(out, line);
}

#[rstest]
#[case::sas_without_version("https://example.com/search?q=x&sig=AbCdEfGh1234567890abcdef")]
#[case::signature_header("Signature: valid")]
#[case::signature_word("gpg: Good signature from \"Alice <alice@example.com>\"")]
#[case::sqlplus_nolog("sqlplus /nolog")]
#[case::sqlplus_sysdba("sqlplus / as sysdba")]
#[case::german("The German team won 2/1@home")]
#[case::account_name("DefaultEndpointsProtocol=https;AccountName=myacct;EndpointSuffix=core.windows.net")]
fn connection_look_alikes_stay_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

/// `n` characters cycling through `pool`: bodies of the right length and
/// character class for fake tokens.
fn fake(pool: &str, n: usize) -> String {
    pool.chars().cycle().take(n).collect()
}

const MIXED: &str = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8";
const HEX: &str = "0123456789abcdef";

#[rstest]
#[case::openai_legacy(format!("sk-{}", fake(MIXED, 48)), "ai_api_key")]
#[case::openai_project(format!("sk-proj-{}_{}", fake(MIXED, 60), fake(MIXED, 40)), "ai_api_key")]
#[case::openai_service_account(format!("sk-svcacct-{}", fake(MIXED, 64)), "ai_api_key")]
#[case::anthropic(format!("sk-ant-api03-{}-{}AA", fake(MIXED, 80), fake(MIXED, 11)), "ai_api_key")]
#[case::huggingface(format!("hf_{}", fake("aBcDeFgHiJkLmNoPqRsTuVwXyZ", 34)), "ai_api_key")]
#[case::groq(format!("gsk_{}", fake(MIXED, 52)), "ai_api_key")]
#[case::replicate(format!("r8_{}", fake(MIXED, 37)), "ai_api_key")]
#[case::perplexity(format!("pplx-{}", fake(MIXED, 48)), "ai_api_key")]
#[case::npm(format!("npm_{}", fake(MIXED, 36)), "registry_token")]
#[case::pypi(format!("pypi-AgEIcHlwaS5vcmc{}", fake(MIXED, 70)), "registry_token")]
#[case::rubygems(format!("rubygems_{}", fake(HEX, 48)), "registry_token")]
#[case::nuget(format!("oy2{}", fake("a1b2c3d4e5f6g7h8", 43)), "registry_token")]
#[case::crates_io(format!("cio{}", fake(MIXED, 32)), "registry_token")]
#[case::docker_hub(format!("dckr_pat_{}", fake(MIXED, 27)), "registry_token")]
#[case::gitlab_pat(format!("glpat-{}", fake(MIXED, 20)), "ci_token")]
#[case::gitlab_trigger(format!("glptt-{}", fake(HEX, 40)), "ci_token")]
#[case::gitlab_runner_registration(format!("GR1348941{}", fake(MIXED, 20)), "ci_token")]
#[case::gitlab_runner(format!("glrt-{}", fake(MIXED, 20)), "ci_token")]
#[case::buildkite(format!("bkua_{}", fake(HEX, 40)), "ci_token")]
#[case::atlassian(format!("ATATT3xFfGF0{}={}", fake(MIXED, 170), fake("0A1B2C3D", 8)), "ci_token")]
#[case::bitbucket_app_password(format!("ATBB{}", fake(MIXED, 32)), "ci_token")]
#[case::circleci(format!("CCIPAT_{}_{}", fake(MIXED, 22), fake(HEX, 40)), "ci_token")]
#[case::sendgrid(format!("SG.{}.{}", fake(MIXED, 22), fake(MIXED, 43)), "messaging_api_key")]
#[case::brevo(format!("xkeysib-{}-{}", fake(HEX, 64), fake(MIXED, 16)), "messaging_api_key")]
#[case::mailgun(format!("key-{}", fake(HEX, 32)), "messaging_api_key")]
// Not held while written: until `-us12` arrives it is a bare 32-hex run,
// the shape of every MD5, which must stay visible as it is printed.
#[case::mailchimp(format!("{}-us12", fake(HEX, 32)), "messaging_api_key")]
#[case::slack_app(format!("xapp-1-A0123456789-1234567890123-{}", fake(HEX, 64)), "slack_token")]
#[case::telegram(format!("123456789:AA{}", fake(MIXED, 33)), "chat_token")]
fn vendor_token_masked(#[case] token: String, #[case] detector: &str) {
    for line in [
        token.clone(),
        format!("export KEY_X={token}"),
        format!("  \"value\": \"{token}\","),
        format!("Authorization: Bearer {token}"),
        format!("curl -H 'X-Key: {token}' https://api.example.com"),
    ] {
        let f = found(&detectors(), &line);
        assert!(f.iter().any(|(d, t)| d == detector && *t == token), "{line:?}: expected {detector} on {token:?}, found {f:?}");
        if !token.ends_with("-us12") {
            assert_never_shown_while_written(&line, &token);
        }
    }
}

#[rstest]
#[case::discord(
    "curl -X POST https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz01 -d @msg.json",
    "123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz01"
)]
#[case::discordapp(
    "WEBHOOK=https://discordapp.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz01",
    "123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz01"
)]
#[case::teams(
    "https://contoso.webhook.office.com/webhookb2/0a1b2c3d-0000-1111-2222-333344445555@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/0123456789abcdef0123456789abcdef/9a8b7c6d-0000-1111-2222-333344445555",
    "0a1b2c3d-0000-1111-2222-333344445555@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/0123456789abcdef0123456789abcdef/9a8b7c6d-0000-1111-2222-333344445555"
)]
fn chat_webhook_path_masked_and_host_kept(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "chat_token");
}

#[rstest]
#[case::twilio_auth_token("twilio api:core:messages:create --account-sid AC0123456789abcdef0123456789abcdef --auth-token-x 0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "messaging_api_key")]
#[case::twilio_api_key("TWILIO key SK0123456789abcdef0123456789abcdef created", "SK0123456789abcdef0123456789abcdef", "messaging_api_key")]
#[case::cohere("cohere key: q8Zr2LmW0xTn5VbK7cJdq8Zr2LmW0xTn5VbK7cJ3", "q8Zr2LmW0xTn5VbK7cJdq8Zr2LmW0xTn5VbK7cJ3", "ai_api_key")]
#[case::travis("travis token is Zq8r2LmW0xTn5VbK7cJdA1", "Zq8r2LmW0xTn5VbK7cJdA1", "ci_token")]
#[case::postmark("Postmark server 0a1b2c3d-4e5f-6789-abcd-ef0123456789 ready", "0a1b2c3d-4e5f-6789-abcd-ef0123456789", "messaging_api_key")]
#[case::circleci_old("circleci setup --no-prompt --host https://circleci.com --token 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567", "ci_token")]
#[case::circleci_api("curl -H 'Circle-Token: 89abcdef0123456789abcdef0123456789abcdef' https://circleci.com/api/v2/me", "89abcdef0123456789abcdef0123456789abcdef", "ci_token")]
#[case::mailgun_new("mailgun api 0123456789abcdef0123456789abcdef-01234567-89abcdef", "0123456789abcdef0123456789abcdef-01234567-89abcdef", "messaging_api_key")]
fn vendor_labelled_key_masked(#[case] line: &str, #[case] secret: &str, #[case] detector: &str) {
    assert_masks(line, secret, detector);
}

#[rstest]
#[case::sk_in_word("the task-0123456789abcdefghijklmnopqrstuvwxyzAB is done")]
#[case::sk_learn("pip install sk-learn-extensions-for-everything-you-need")]
#[case::sk_short("sk-abc123")]
#[case::hf_short("hf_hub_download")]
#[case::npm_short("npm_config_cache=/tmp")]
#[case::npm_lowercase_words("npm_package_dependencies_something_longer_here_x")]
#[case::cio_word("cioccolato ciocciocciocciocciocciocciocciocciocci")]
#[case::glpat_short("glpat-xxxx")]
#[case::md5_alone("0123456789abcdef0123456789abcdef  file.tar.gz")]
#[case::uuid_without_postmark("request 0a1b2c3d-4e5f-6789-abcd-ef0123456789 ok")]
#[case::twilio_account_sid("twilio account AC0123456789abcdef0123456789abcdef")]
#[case::twilio_git_sha("twilio deploy 3f786850e387550fdab836ed7e6dc881de23001b")]
#[case::circleci_commit("CIRCLE_SHA1=3f786850e387550fdab836ed7e6dc881de23001b circleci step")]
#[case::cohere_identifier("cohere: ServiceAccountTokenV1HandlerFactoryBeanXy")]
#[case::mailchimp_region("aws --region us-east-1 --profile x-us12")]
#[case::telegram_time("12:00:01 AA battery")]
#[case::mac_address("ether 00:1a:aa:bb:cc:dd")]
#[case::discord_invite("https://discord.com/invite/abcdef")]
#[case::key_dash_word("key-value store: redis")]
fn vendor_look_alikes_stay_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

#[rstest]
#[case::pw("pw=S3cretPass", "S3cretPass")]
#[case::pw_colon("pw: S3cretPass", "S3cretPass")]
#[case::user_pw("DB_PW=S3cretPass", "S3cretPass")]
#[case::pw_json(r#"{"user":"bob","pw":"S3cretPass"}"#, "S3cretPass")]
#[case::pwd_colon("pwd: S3cretPass", "S3cretPass")]
#[case::pass_colon("pass: S3cretPass", "S3cretPass")]
#[case::pass_equals("pass=S3cretPass", "S3cretPass")]
#[case::passwd("passwd=S3cretPass", "S3cretPass")]
#[case::pin("pin: 4821", "4821")]
#[case::pin_upper("PIN=482193", "482193")]
#[case::sim_pin("SIM_PIN=4821", "4821")]
#[case::pin_json(r#""pin": "4821""#, "4821")]
#[case::secret("secret: S3cretPass", "S3cretPass")]
#[case::passphrase("passphrase: correct horse battery staple", "correct horse battery staple")]
fn short_labels_masked(#[case] line: &str, #[case] secret: &str) {
    assert_masks(line, secret, "assignment");
}

#[rstest]
#[case::passwd_updated("passwd: password updated successfully")]
#[case::passwd_expiry("passwd: password expiry information changed.")]
#[case::password_updated("password: updated successfully")]
#[case::password_changed("Password changed.")]
#[case::length_rule("Password: must be at least 8 characters")]
#[case::mismatch("passwd: Authentication token manipulation error")]
#[case::retype("Retype new password:")]
#[case::git_prompt("Password for 'https://alice@github.com':")]
#[case::git_username_prompt("Username for 'https://github.com':")]
#[case::ls_long("-rw-r--r-- 1 alice staff 4.0K Nov 26 12:00 password.txt")]
#[case::ls_short("password.txt  secrets.yaml  token.json")]
#[case::du("4.0K\tpassword.txt")]
#[case::size_listing("password.txt  4.0K")]
#[case::password_stdin("docker login -u bot --password-stdin")]
#[case::man_synopsis("       -p[password], --password[=password]")]
#[case::man_prose("              The password to use when connecting to the server.")]
#[case::pin_version("pin: v2.1")]
#[case::pin_words("pin: true")]
#[case::mapping("mapping: 4821")]
#[case::spinner("spinner=4821")]
#[case::ping("ping: 4821 packets")]
#[case::pw_in_word("npw=5")]
fn password_words_without_a_value_stay_visible(#[case] line: &str) {
    assert_visible(&detectors(), line);
}

/// A label on one line and its value on the next (after up to two blank
/// lines), as installers and admin tools print a generated secret.
#[rstest]
#[case(&["Please use the following password to proceed to installation:", "", "4f1d9c0b7e2a4b6c8d0e1f2a3b4c5d6e", "", "This may also be found at: /var/jenkins_home/secrets/initialAdminPassword"], 2)]
#[case(&["Your new API key:", "  sk9Qe2LmW0xTn5VbK7cJdR4t"], 1)]
#[case(&["Generated root password:", "Xk9#mP2q!vL7wZ"], 1)]
#[case(&["password:", "    q8Zr2LmW0xTn5VbK7cJd"], 1)]
#[case(&["Token :", "", "", "aB3dE5gH7jK9mN1pQ3sT"], 3)]
fn a_value_below_its_label_is_masked(#[case] lines: &[&str], #[case] at: usize) {
    let out = masked_with(&detectors(), lines);
    let value = lines[at].trim();
    assert!(!out[at].contains(value) && out[at].contains(&"*".repeat(value.len())), "{lines:?}: {out:?}");
    for (i, (a, b)) in lines.iter().zip(&out).enumerate() {
        if i != at {
            assert_eq!(a, b, "line {i} changed: {out:?}");
        }
    }
}

/// What follows a password prompt is the command's output, and a label too
/// far above, or a value that a person would write, stays visible.
#[rstest]
#[case(&["[sudo] password for alice:", "web01.prod.example.com"])]
#[case(&["[sudo] password for alice:", "file_2024.log"])]
#[case(&["Password:", "3f9a1c2b7d4e"])]
#[case(&["Password:", "su: Authentication failure"])]
#[case(&["Enter passphrase for key '/home/alice/.ssh/id_ed25519':", "Identity added: /home/alice/.ssh/id_ed25519 (alice@laptop)"])]
#[case(&["password:", "", "", "", "q8Zr2LmW0xTn5VbK7cJd"])]
#[case(&["Usage:", "q8Zr2LmW0xTn5VbK7cJd"])]
#[case(&["password:", "550e8400-e29b-41d4-a716-446655440000"])]
#[case(&["Token:", "--help"])]
fn a_value_below_a_prompt_or_no_label_stays_visible(#[case] lines: &[&str]) {
    let out = masked_with(&detectors(), lines);
    assert_eq!(out, lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>());
}

/// The label scrolled off in an earlier scan: the context carries it.
#[test]
fn a_label_above_carries_across_scan_calls() {
    let d = detectors();
    let mut ctx = Context::new();
    assert!(d.scan_from(&mut ctx, &["Your new API token:"]).is_empty());
    let f = d.scan_from(&mut ctx, &["Zx8Qe2LmW0xTn5VbK7cJ"]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(d.scan(&["Zx8Qe2LmW0xTn5VbK7cJ"]).is_empty());
}
