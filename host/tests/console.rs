//! The web console at `/ui/`, used as a person would: headless Chromium
//! (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/clients.sh`) driven through WebDriver opens the page of a node
//! holding known data, types a query with completion, runs it and reads the
//! chart's legend, the table, the limits and errors shown, the series
//! browser and the status tab. Screenshots are kept under
//! `target/test-artifacts/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{which, Node};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// 120 hosts (`h000`…`h119`, even ones in site `lon`, odd in `ams`), each a
/// day of points a minute apart, ending now.
const HOSTS: usize = 120;
const POINTS: i64 = 1440;

/// examples/local.toml, at most 100 groups per answer (so that the query by
/// host hits the group limit).
fn config() -> String {
    let config = common::local_config();
    assert!(config.contains("[query]\n"), "examples/local.toml has a [query] table");
    config.replace("[query]\n", "[query]\ngroup_limit = 100\n")
}

fn write_data(node: &Node) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let last = now - now % 60_000;
    for h in 0..HOSTS {
        let site = if h % 2 == 0 { "lon" } else { "ams" };
        let points: Vec<Value> =
            (0..POINTS).map(|i| json!([last - (POINTS - 1 - i) * 60_000, (h as i64 * 10 + i % 60) as f64])).collect();
        let body = json!({"series": {"key": "cpu", "tags": {"host": format!("h{h:03}"), "site": site}},
                          "data": {"type": "points", "data": points}});
        let (status, reply) = node.post("/write", &body);
        assert_eq!(status, 200, "{reply}");
    }
}

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        let binary = which("chromedriver").expect("no `chromedriver` on PATH: scripts/clients.sh installs it");
        let port = common::free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium, without the background connections a closed
/// network refuses, in a fresh profile.
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--window-size=1400,1000".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({"binary": which("chromium").expect("no chromium"), "args": args}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// Evaluates `expression` in the page until it is truthy; its value.
async fn until(client: &Client, what: &str, expression: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let script = format!("return ({expression});");
    loop {
        let value = client.execute(&script, vec![]).await.unwrap();
        if !matches!(value, Value::Null | Value::Bool(false)) && value != json!(0) && value != json!("") {
            return value;
        }
        if Instant::now() > deadline {
            let notices = client.execute("return document.body.innerText", vec![]).await.unwrap();
            panic!("timed out waiting for {what} ({expression}); the page says:\n{}", notices.as_str().unwrap_or(""));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn page_text(client: &Client, selector: &str) -> String {
    client.find(Locator::Css(selector)).await.unwrap().text().await.unwrap()
}

/// Types `keys` into the HQL box and waits for the completion list to offer
/// `offered`; takes the first suggestion with Tab.
async fn complete(client: &Client, keys: &str, offered: &str) {
    let hql = client.find(Locator::Css("#hql")).await.unwrap();
    hql.send_keys(keys).await.unwrap();
    let check = format!(
        "[...document.querySelectorAll('#completions li')].some(li => li.firstChild.textContent === {offered:?})"
    );
    until(client, &format!("{offered:?} offered after {keys:?}"), &check).await;
    hql.send_keys(&Key::Tab.to_string()).await.unwrap();
}

/// What the page says it drew (`window.heroicConsole` without the answer
/// itself, which is large).
const STATE: &str = "return {...window.heroicConsole, answer: undefined}";

/// Runs what is in the HQL box; waits for the answer to be drawn.
async fn run(client: &Client) -> Value {
    let runs = client.execute("return window.heroicConsole.runs", vec![]).await.unwrap();
    client.find(Locator::Css("#run")).await.unwrap().click().await.unwrap();
    until(client, "the answer", &format!("window.heroicConsole.runs > {runs}")).await;
    client.execute(STATE, vec![]).await.unwrap()
}

/// A figure that depends on where the range's edges fall in the buckets.
fn about(value: &Value, want: i64, slack: i64) -> bool {
    value.as_i64().is_some_and(|v| (want - slack..=want + slack).contains(&v))
}

async fn set_query(client: &Client, hql: &str) {
    client.execute("document.getElementById('hql').value = arguments[0]", vec![json!(hql)]).await.unwrap();
}

fn legend(state: &Value) -> Vec<String> {
    state["legend"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

async fn with_legend(client: &Client, state: Value) -> Value {
    // The legend as drawn: uPlot's rows, the first being the time axis.
    let labels = client
        .execute("return [...document.querySelectorAll('#chart .u-legend .u-series .u-label')].slice(1).map(e => e.textContent)", vec![])
        .await
        .unwrap();
    let mut state = state;
    state["legend"] = labels;
    state
}

/// Whether an image has something drawn: more than one colour in it.
fn colours(png_bytes: &[u8]) -> usize {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixel = info.color_type.samples();
    let mut seen = std::collections::HashSet::new();
    for p in buf[..info.buffer_size()].chunks(pixel) {
        seen.insert(p.to_vec());
    }
    seen.len()
}

fn artifact(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_person_queries_browses_and_checks_status() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &config());
    write_data(&node);
    // Not a page: /ui answers its own path with a redirect to /ui/.
    let plain = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let redirect = plain.get(node.url("/ui")).send().unwrap();
    assert_eq!(redirect.status(), 301);
    assert_eq!(redirect.headers()["location"], "/ui/");

    let driver = Driver::start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, &dir.path().join("profile")).await;
        client.goto(&node.url("/ui/")).await.unwrap();
        until(&client, "the page's script", "window.heroicConsole").await;
        assert_eq!(client.title().await.unwrap(), "Heroic console");

        // Typed with completion: the key from the suggest backend, then a
        // tag name and one of its values.
        client.execute("document.getElementById('range').value = '1d'", vec![]).await.unwrap();
        complete(&client, "average(5m) by host where $key = c", "cpu").await;
        complete(&client, "and si", "site").await;
        complete(&client, "= l", "lon").await;
        let typed = client.find(Locator::Css("#hql")).await.unwrap().prop("value").await.unwrap().unwrap();
        assert_eq!(typed.trim_end(), "average(5m) by host where $key = cpu and site = lon");
        let state = with_legend(&client, run(&client).await).await;
        assert_eq!(state["drawn"], 60, "{state}");
        let labels = legend(&state);
        assert_eq!(labels.len(), 60, "{labels:?}");
        for h in (0..HOSTS).step_by(2) {
            assert!(labels.contains(&format!("host=h{h:03}")), "no host=h{h:03} in the legend {labels:?}");
        }
        assert!(about(&state["points"], 60 * 288, 60), "a day in 5 minute buckets per host: {state}");
        assert_eq!(page_text(&client, "#notices").await, "", "no limit, no error");
        let chart = client.find(Locator::Css("#chart canvas")).await.unwrap().screenshot().await.unwrap();
        assert!(colours(&chart) > 20, "the chart is blank");
        let shot = client.screenshot().await.unwrap();
        println!("screenshot: {}", artifact("console-query.png", &shot).display());

        // Every host by the minute: 120 groups, cut to the node's 100, the
        // limit said plainly; 100 × 1,440 points drawn.
        set_query(&client, "average(1m) by host where $key = cpu").await;
        let state = with_legend(&client, run(&client).await).await;
        assert_eq!(state["drawn"], 100, "{}", page_text(&client, "#notices").await);
        assert_eq!(legend(&state).len(), 100);
        assert!(about(&state["points"], 100 * POINTS, 100), "a day by the minute per host: {state}");
        let notices = page_text(&client, "#notices").await;
        assert!(notices.contains("Limit hit: GROUP"), "{notices}");
        println!("100 groups × 1,440 points: answered in {} ms, drawn in {} ms", state["ms"], state["renderMs"]);
        let shot = client.screenshot().await.unwrap();
        println!("screenshot: {}", artifact("console-100-groups.png", &shot).display());

        // The table view: a row per group, its values on a click.
        client.find(Locator::Css(".views [data-view=table]")).await.unwrap().click().await.unwrap();
        let rows = client.find_all(Locator::Css("#table tr.group")).await.unwrap();
        assert_eq!(rows.len(), 100);
        rows[0].click().await.unwrap();
        let values = page_text(&client, "#table tr.values").await;
        let first = client.execute("return window.heroicConsole.answer.result[0].values.length", vec![]).await.unwrap();
        assert_eq!(values.lines().count() as u64, first.as_u64().unwrap(), "{}", &values[..200.min(values.len())]);
        client.find(Locator::Css(".views [data-view=chart]")).await.unwrap().click().await.unwrap();

        // An error of the answer (200 with `errors`), and a query that does
        // not parse (400 with where): both shown.
        set_query(&client, "sum(1ms) where $key = cpu").await;
        run(&client).await;
        let notices = page_text(&client, "#notices .error").await;
        assert!(notices.contains("buckets"), "{notices}");
        set_query(&client, "average( where").await;
        let state = run(&client).await;
        assert_eq!(state["drawn"], 0);
        let notices = page_text(&client, "#notices .error").await;
        assert!(notices.starts_with("400: ") && notices.contains("line 1, column"), "{notices}");

        // The series browser: keys, a key's tags with their value counts,
        // a tag's values; a value opens its series as a query.
        client.find(Locator::Css("nav [data-tab=series]")).await.unwrap().click().await.unwrap();
        until(&client, "the keys", "[...document.querySelectorAll('#keys li')].some(li => li.textContent === 'cpu')")
            .await;
        client.find(Locator::XPath("//ul[@id='keys']/li[span='cpu']")).await.unwrap().click().await.unwrap();
        let tags = until(&client, "the tags", "document.querySelector('#tags li:nth-child(3)')?.innerText").await;
        let tags_text = page_text(&client, "#tags").await;
        assert!(tags_text.contains("host") && tags_text.contains("120 values"), "{tags_text} ({tags})");
        assert!(page_text(&client, "#tags-of").await.contains("120 series"));
        client.find(Locator::XPath("//ul[@id='tags']/li[span='site']")).await.unwrap().click().await.unwrap();
        until(&client, "the values", "document.querySelectorAll('#values li').length === 2").await;
        client.find(Locator::XPath("//ul[@id='values']/li[span='ams']")).await.unwrap().click().await.unwrap();
        until(&client, "the query tab", "!document.getElementById('tab-query').hidden").await;
        until(&client, "the answer", "window.heroicConsole.answer && !window.heroicConsole.running").await;
        let state = client.execute(STATE, vec![]).await.unwrap();
        assert_eq!(state["groups"], 60, "the raw series of site ams");
        let typed = client.find(Locator::Css("#hql")).await.unwrap().prop("value").await.unwrap().unwrap();
        assert_eq!(typed, r#"* where $key = "cpu" and site = "ams""#);

        // The status tab: every backend, ok, with its statistics.
        client.find(Locator::Css("nav [data-tab=status]")).await.unwrap().click().await.unwrap();
        until(&client, "the status", "document.querySelectorAll('#status tbody tr').length === 3").await;
        let status = page_text(&client, "#status").await;
        assert!(status.contains("Every component is ok."), "{status}");
        assert!(status.contains("series 120"), "the metadata backend's series count: {status}");
        let shot = client.screenshot().await.unwrap();
        println!("screenshot: {}", artifact("console-status.png", &shot).display());

        client.close().await.unwrap();
    });
}
