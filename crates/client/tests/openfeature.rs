//! The OpenFeature provider through the `open-feature` SDK, over a client fed by the real Worker.

mod support;

use std::sync::Arc;
use std::time::Duration;

use open_feature::{EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature};
use promptflag_client::openfeature::PromptflagProvider;
use promptflag_client::{Client, ClientConfig};
use support::Worker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boolean_string_and_object_flags_with_reasons_and_error_codes() {
    let worker = tokio::task::spawn_blocking(|| {
        let (worker, _fixture) = Worker::with_fixture(4);
        worker
    })
    .await
    .unwrap();
    let url = worker.url.clone();
    let client = tokio::task::spawn_blocking(move || {
        let mut config = ClientConfig::new(url).with_read_key(support::TEST_SERVER_KEY);
        config.refresh_interval = Duration::from_secs(3600);
        Arc::new(Client::start(config))
    })
    .await
    .unwrap();
    assert_eq!(client.revision(), Some(4));

    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(PromptflagProvider::new(Arc::clone(&client)))
        .await;
    let of = api.create_client();
    drop(api);

    let pro = EvaluationContext::default()
        .with_targeting_key("u1")
        .with_custom_field("plan", "pro");
    let free = EvaluationContext::default()
        .with_targeting_key("u2")
        .with_custom_field("plan", "free");

    let on = of
        .get_bool_details("new_ui", Some(&pro), None)
        .await
        .unwrap();
    assert!(on.value);
    assert_eq!(on.variant.as_deref(), Some("on"));
    assert_eq!(on.reason, Some(EvaluationReason::TargetingMatch));
    let off = of
        .get_bool_details("new_ui", Some(&free), None)
        .await
        .unwrap();
    assert!(!off.value);
    assert_eq!(off.reason, Some(EvaluationReason::Default));

    let greeting = of
        .get_string_details("greeting", Some(&free), None)
        .await
        .unwrap();
    assert_eq!(greeting.value, "Hello again, rev 4");
    // No rules and one variant served to everyone.
    assert_eq!(greeting.reason, Some(EvaluationReason::Static));

    let limits = of
        .get_struct_details::<open_feature::StructValue>("limits", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!(
        limits
            .value
            .fields
            .get("max_tokens")
            .and_then(|v| v.as_i64()),
        Some(1024)
    );

    let prompt = of
        .get_struct_details::<open_feature::StructValue>("support_prompt", Some(&free), None)
        .await
        .unwrap();
    assert_eq!(prompt.reason, Some(EvaluationReason::Split));
    assert!(prompt.value.fields.contains_key("hash"));

    let missing = of
        .get_bool_details("no_such_flag", Some(&pro), None)
        .await
        .unwrap_err();
    assert_eq!(missing.code, EvaluationErrorCode::FlagNotFound);
    let mismatch = of
        .get_bool_details("greeting", Some(&pro), None)
        .await
        .unwrap_err();
    assert_eq!(mismatch.code, EvaluationErrorCode::TypeMismatch);
    let no_key = EvaluationContext::default().with_custom_field("plan", "free");
    let unkeyed = of
        .get_struct_details::<open_feature::StructValue>("support_prompt", Some(&no_key), None)
        .await
        .unwrap_err();
    assert_eq!(unkeyed.code, EvaluationErrorCode::TargetingKeyMissing);

    tokio::task::spawn_blocking(move || drop(worker))
        .await
        .unwrap();
}
