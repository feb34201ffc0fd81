//! `suggest-*`: the suggest endpoints, called in-process or over
//! `--connect`.

use clap::Args;
use serde_json::Value;

use crate::shell::endpoint::Endpoint;
use crate::shell::options::MetadataArgs;
use crate::shell::{now_ms, Shell, ShellError};

/// Builds the endpoint's body from `selection` plus the task's own fields,
/// calls the endpoint and prints its answer.
async fn suggest(
    shell: &Shell,
    selection: &MetadataArgs,
    fields: &[(&str, Value)],
    endpoint: Endpoint,
) -> Result<(), ShellError> {
    let mut body = selection.body(now_ms())?;
    for (name, value) in fields {
        if !value.is_null() {
            body.insert(name.to_string(), value.clone());
        }
    }
    let answer = shell.call(endpoint, Value::Object(body).to_string().as_bytes()).await?;
    shell.out.answer(&answer)
}

#[derive(Args, Debug)]
pub struct SuggestKeyArgs {
    /// What was typed of the key so far (default: any key).
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    #[command(flatten)]
    pub selection: MetadataArgs,
}

/// `suggest-key`: `{errors, suggestions: [{score, key}]}`.
pub async fn key(shell: &Shell, args: &SuggestKeyArgs) -> Result<(), ShellError> {
    let fields = [("key", args.key.clone().into())];
    suggest(shell, &args.selection, &fields, Endpoint::KeySuggest).await
}

#[derive(Args, Debug)]
pub struct SuggestTagArgs {
    /// What was typed of the tag key so far.
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    /// What was typed of the tag value so far.
    #[arg(long, short = 'v')]
    pub value: Option<String>,
    #[command(flatten)]
    pub selection: MetadataArgs,
}

/// `suggest-tag`: `{errors, suggestions: [{score, key, value}]}`.
pub async fn tag(shell: &Shell, args: &SuggestTagArgs) -> Result<(), ShellError> {
    let fields = [("key", args.key.clone().into()), ("value", args.value.clone().into())];
    suggest(shell, &args.selection, &fields, Endpoint::TagSuggest).await
}

#[derive(Args, Debug)]
pub struct SuggestTagValueArgs {
    /// The tag key whose values to suggest.
    #[arg(long, short = 'k')]
    pub key: String,
    #[command(flatten)]
    pub selection: MetadataArgs,
}

/// `suggest-tag-value`: `{errors, values, limited}`.
pub async fn tag_value(shell: &Shell, args: &SuggestTagValueArgs) -> Result<(), ShellError> {
    let fields = [("key", args.key.clone().into())];
    suggest(shell, &args.selection, &fields, Endpoint::TagValueSuggest).await
}

#[derive(Args, Debug)]
pub struct SuggestTagValuesArgs {
    /// A tag key to leave out (repeatable).
    #[arg(long, short = 'e')]
    pub exclude: Vec<String>,
    /// Values per tag key at most (default 10).
    #[arg(long)]
    pub group_limit: Option<u64>,
    #[command(flatten)]
    pub selection: MetadataArgs,
}

/// `suggest-tag-values`: `{errors, suggestions: [{key, values, limited}], limited}`.
pub async fn tag_values(shell: &Shell, args: &SuggestTagValuesArgs) -> Result<(), ShellError> {
    let fields = [("exclude", args.exclude.clone().into()), ("groupLimit", args.group_limit.into())];
    suggest(shell, &args.selection, &fields, Endpoint::TagValuesSuggest).await
}

/// `suggest-tag-key-count`: `{errors, suggestions: [{key, count, exactValues?}], limited}`.
pub async fn tag_key_count(shell: &Shell, args: &MetadataArgs) -> Result<(), ShellError> {
    suggest(shell, args, &[], Endpoint::TagKeyCount).await
}
