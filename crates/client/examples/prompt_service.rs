//! A native service resolving a prompt per request, the way promptflag is meant to be used:
//! one client for the process, local evaluation per request (no network call), the body from
//! the verified cache, an exposure per evaluation, and a telemetry event per LLM call.
//!
//! ```sh
//! cargo xtask dev   # in another terminal: the Worker on 127.0.0.1:8787
//! cargo run -p promptflag-client --example prompt_service -- \
//!     --edge http://127.0.0.1:8787 --flag support_prompt --users ann,bob,carol
//! ```
//! Add `--collector http://127.0.0.1:8788` to send telemetry to `promptflag serve` (the port
//! `cargo xtask dev` starts it on); the example exits 1 when any event was not delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use promptflag_client::telemetry::{CallOutcome, LlmCallEvent, Telemetry, TelemetryConfig};
use promptflag_client::{Client, ClientConfig};
use promptflag_core::Context;

struct Options {
    edge: String,
    flag: String,
    users: Vec<String>,
    collector: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        edge: "http://127.0.0.1:8787".into(),
        flag: "support_prompt".into(),
        users: vec!["ann".into(), "bob".into(), "carol".into()],
        collector: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--edge" => options.edge = value()?,
            "--flag" => options.flag = value()?,
            "--users" => options.users = value()?.split(',').map(str::to_string).collect(),
            "--collector" => options.collector = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

/// Fills `{{name}}` placeholders, as a service would before calling its model.
fn render(template: &str, question: &str) -> String {
    template
        .replace("{{question}}", question)
        .replace("{{ question }}", question)
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("prompt_service: {message}");
            std::process::exit(2);
        }
    };
    let exposures = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&exposures);
    let mut config = ClientConfig::new(&options.edge);
    config.refresh_interval = Duration::from_secs(10);
    config.exposure_hook = Some(Arc::new(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    let client = Client::start(config);
    let status = client.status();
    println!(
        "ruleset revision {:?} from {:?} ({} bodies cached)",
        status.revision,
        status.source,
        client.cached_bodies()
    );
    let telemetry = options
        .collector
        .as_ref()
        .map(|url| Telemetry::start(TelemetryConfig::new(url)));

    for (i, user) in options.users.iter().enumerate() {
        let context = Context::new()
            .with_targeting_key(user)
            .with("plan", if i % 2 == 0 { "pro" } else { "free" });
        let started = Instant::now();
        let (resolution, body) = client.resolve_prompt_with_body(&options.flag, &context);
        let Some(prompt) = &resolution.prompt else {
            println!(
                "{user}: no prompt ({:?} {:?})",
                resolution.reason, resolution.error_code
            );
            continue;
        };
        let body = match body {
            Some(Ok(body)) => body,
            Some(Err(error)) => {
                println!("{user}: body unavailable: {error}");
                continue;
            }
            None => continue,
        };
        let rendered = render(&body, "How do I reset my password?");
        // Here the service would call prompt.model with rendered and prompt.parameters.
        println!(
            "{user}: variant {} ({}), prompt {} v{} {}…, model {}, {} chars",
            resolution.variant.as_deref().unwrap_or("-"),
            resolution.reason.as_str(),
            prompt.id,
            prompt.version,
            &prompt.hash[..12],
            prompt.model,
            rendered.len()
        );
        if let Some(telemetry) = &telemetry {
            let outcome = CallOutcome {
                request_id: format!("example-{}-{i}", std::process::id()),
                user_id: Some(user.clone()),
                input_tokens: (rendered.len() / 4) as u64,
                output_tokens: 60,
                latency: started.elapsed(),
                success: true,
                ..CallOutcome::default()
            };
            telemetry.record(LlmCallEvent::from_outcome(&resolution, &outcome));
        }
    }
    println!("exposures recorded: {}", exposures.load(Ordering::Relaxed));
    if let Some(telemetry) = telemetry {
        let stats = telemetry.shutdown();
        println!(
            "telemetry: {} sent, {} dropped (queue full), {} dropped (send failed)",
            stats.sent, stats.dropped_queue_full, stats.dropped_send_failed
        );
        if stats.dropped_queue_full + stats.dropped_send_failed > 0 {
            eprintln!("prompt_service: some telemetry was not delivered to the collector");
            std::process::exit(1);
        }
    }
}
