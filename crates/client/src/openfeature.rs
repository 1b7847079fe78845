//! An OpenFeature provider for the `open-feature` Rust SDK, backed by the client's local
//! evaluator: no network call per evaluation.
//!
//! Errors follow the SDK's contract: the provider returns an `EvaluationError` with the
//! OpenFeature code (so the SDK serves the caller's default), for `FLAG_NOT_FOUND`,
//! `TYPE_MISMATCH`, `TARGETING_KEY_MISSING`, `INVALID_CONTEXT`, and `PROVIDER_NOT_READY` before any
//! ruleset has loaded.

use std::sync::Arc;

use async_trait::async_trait;
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue, Value,
};
use promptflag_core::{AttributeValue, Context, ErrorCode, ExpectedType, Reason};

use crate::client::{Client, Resolution};

/// The provider. Share one [`Client`] between it and the rest of the service.
pub struct PromptflagProvider {
    client: Arc<Client>,
    metadata: ProviderMetadata,
}

impl PromptflagProvider {
    /// A provider over a started client.
    pub fn new(client: Arc<Client>) -> PromptflagProvider {
        PromptflagProvider {
            client,
            metadata: ProviderMetadata::new("promptflag"),
        }
    }

    fn resolve(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
        expected: ExpectedType,
    ) -> EvaluationResult<Resolution> {
        let context = to_context(context);
        let resolution = self.client.evaluate_typed(flag_key, &context, expected);
        match resolution.error_code {
            None => Ok(resolution),
            Some(code) => Err(EvaluationError {
                code: match code {
                    ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
                    ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
                    ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
                    ErrorCode::ParseError => EvaluationErrorCode::ParseError,
                    ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
                    _ if resolution.revision.is_none() => EvaluationErrorCode::ProviderNotReady,
                    _ => EvaluationErrorCode::General(code.as_str().to_string()),
                },
                message: resolution.error_message.clone(),
            }),
        }
    }
}

/// The SDK's context as core's: the targeting key plus every scalar custom field; date-times
/// become RFC 3339 text, structures are kept as unsupported (a rule reading one reports
/// `INVALID_CONTEXT`).
pub fn to_context(context: &EvaluationContext) -> Context {
    let mut converted = Context::new();
    if let Some(key) = &context.targeting_key {
        converted.set(
            promptflag_core::context::TARGETING_KEY,
            AttributeValue::String(key.clone()),
        );
    }
    for (name, value) in &context.custom_fields {
        let attribute = match value {
            EvaluationContextFieldValue::Bool(flag) => AttributeValue::Bool(*flag),
            EvaluationContextFieldValue::Int(number) => AttributeValue::Integer(*number),
            EvaluationContextFieldValue::Float(number) => AttributeValue::Number(*number),
            EvaluationContextFieldValue::String(text) => AttributeValue::String(text.clone()),
            EvaluationContextFieldValue::DateTime(moment) => {
                let millis = (moment.unix_timestamp_nanos() / 1_000_000) as i64;
                AttributeValue::String(crate::telemetry::rfc3339_from_millis(millis))
            }
            EvaluationContextFieldValue::Struct(_) => AttributeValue::Unsupported,
        };
        converted.set(name, attribute);
    }
    converted
}

fn details<T>(value: T, resolution: &Resolution) -> ResolutionDetails<T> {
    let mut metadata = FlagMetadata::default();
    if let Some(revision) = resolution.revision {
        metadata.add_value("revision", revision as i64);
    }
    if let Some(prompt) = &resolution.prompt {
        metadata.add_value("promptHash", prompt.hash.clone());
    }
    ResolutionDetails {
        value,
        variant: resolution.variant.clone(),
        reason: Some(match resolution.reason {
            Reason::Static => EvaluationReason::Static,
            Reason::TargetingMatch => EvaluationReason::TargetingMatch,
            Reason::Split => EvaluationReason::Split,
            Reason::Disabled => EvaluationReason::Disabled,
            Reason::Default => EvaluationReason::Default,
            Reason::Error => EvaluationReason::Error,
        }),
        flag_metadata: Some(metadata),
    }
}

fn type_mismatch(message: &str) -> EvaluationError {
    EvaluationError {
        code: EvaluationErrorCode::TypeMismatch,
        message: Some(message.to_string()),
    }
}

#[async_trait]
impl FeatureProvider for PromptflagProvider {
    fn status(&self) -> ProviderStatus {
        if self.client.revision().is_some() {
            ProviderStatus::Ready
        } else {
            ProviderStatus::NotReady
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let resolution = self.resolve(flag_key, context, ExpectedType::Boolean)?;
        let value = resolution
            .value
            .as_ref()
            .and_then(|v| v.as_bool())
            .ok_or_else(|| type_mismatch("not a boolean"))?;
        Ok(details(value, &resolution))
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        let resolution = self.resolve(flag_key, context, ExpectedType::Number)?;
        let value = resolution
            .value
            .as_ref()
            .and_then(|v| v.as_i64())
            .ok_or_else(|| type_mismatch("not an integer"))?;
        Ok(details(value, &resolution))
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        let resolution = self.resolve(flag_key, context, ExpectedType::Number)?;
        let value = resolution
            .value
            .as_ref()
            .and_then(|v| v.as_f64())
            .ok_or_else(|| type_mismatch("not a number"))?;
        Ok(details(value, &resolution))
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let resolution = self.resolve(flag_key, context, ExpectedType::String)?;
        let value = resolution
            .value
            .as_ref()
            .and_then(|v| v.as_str())
            .ok_or_else(|| type_mismatch("not a string"))?
            .to_string();
        Ok(details(value, &resolution))
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let resolution = self.resolve(flag_key, context, ExpectedType::Object)?;
        let value = match resolution.value.as_ref().map(Value::try_from) {
            Some(Ok(Value::Struct(object))) => object,
            _ => return Err(type_mismatch("not an object")),
        };
        Ok(details(value, &resolution))
    }
}
