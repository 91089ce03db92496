//! Reading an OpenAI-compatible server's replies: chat completions and completions, as the
//! servers people run write them (`bytes: null`, missing `usage`, both `top_logprobs` shapes).

use serde_json::Value;

use super::digits::TopTokens;

/// The listed tokens of a reply's first position, and the prompt's token count when given.
pub fn first_position(reply: &Value) -> Result<(TopTokens, Option<u64>), String> {
    let choice = reply.pointer("/choices/0").ok_or("the reply has no choices")?;
    let logprobs = choice
        .get("logprobs")
        .filter(|value| !value.is_null())
        .ok_or("the reply has no `logprobs`: scoring mode needs a server that gives `logprobs` and `top_logprobs`")?;
    let top = if let Some(content) = logprobs.get("content") {
        // Chat completions: content[0].top_logprobs = [{token, logprob}, ...].
        let entries = content
            .pointer("/0/top_logprobs")
            .and_then(Value::as_array)
            .ok_or("`logprobs.content[0].top_logprobs` is missing: ask the server for `top_logprobs`")?;
        entries
            .iter()
            .map(|entry| {
                let token = entry.get("token").and_then(Value::as_str).ok_or("a top_logprobs entry has no `token`")?;
                let logprob =
                    entry.get("logprob").and_then(Value::as_f64).ok_or("a top_logprobs entry has no `logprob`")?;
                Ok((token.to_string(), logprob))
            })
            .collect::<Result<Vec<_>, &str>>()?
    } else {
        // Completions: top_logprobs[0] = {token: logprob, ...}.
        let entries = logprobs
            .pointer("/top_logprobs/0")
            .and_then(Value::as_object)
            .ok_or("`logprobs.top_logprobs[0]` is missing: ask the server for `logprobs`")?;
        entries
            .iter()
            .map(|(token, logprob)| {
                logprob.as_f64().map(|logprob| (token.clone(), logprob)).ok_or("a top_logprobs value is not a number")
            })
            .collect::<Result<Vec<_>, &str>>()?
    };
    let prompt_tokens = reply.pointer("/usage/prompt_tokens").and_then(Value::as_u64);
    Ok((top, prompt_tokens))
}

/// The reply's text: a chat message's content or a completion's text.
pub fn reply_text(reply: &Value) -> Result<String, String> {
    let choice = reply.pointer("/choices/0").ok_or("the reply has no choices")?;
    choice
        .pointer("/message/content")
        .or_else(|| choice.get("text"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "the reply has neither `message.content` nor `text`".to_string())
}

/// What an error body says (`{"error": {"message": ...}}`, or its first 300 characters).
pub fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|value| {
            value.pointer("/error/message").or_else(|| value.get("error")).or_else(|| value.get("detail"))
        })
        .and_then(|value| value.as_str().map(str::to_string).or_else(|| Some(value.to_string())));
    let message = message.unwrap_or_else(|| body.to_string());
    message.chars().take(300).collect()
}
