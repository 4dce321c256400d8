//! `shotlist sim`: serves the simulator until Ctrl-C (or SIGTERM), printing its URL first so
//! scripts and CI can read the port it picked.

use crate::cli::SimArgs;
use crate::commands::Global;
use crate::error::Error;
use crate::sim::{SimConfig, SimProvider};

/// Maps the flags onto the simulator's settings, refusing values that make no sense.
pub fn config(args: &SimArgs) -> Result<SimConfig, Error> {
    if args.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err(Error::Usage(
            "--key is empty; give the key clients must send, or leave --key out to accept any"
                .into(),
        ));
    }
    if args.rate_limit == Some(0) {
        return Err(Error::Usage(
            "--rate-limit 0 would refuse every submit; give at least 1, or leave it out".into(),
        ));
    }
    Ok(SimConfig {
        provider: args.provider,
        key: args.key.clone(),
        account_keys: Vec::new(),
        gen_time: args.gen_time,
        jitter: args.jitter,
        shape: args.shape.into(),
        rate_limit: args.rate_limit,
        rps_limit: args.rps_limit,
        p429: args.p429,
        p429_query: args.p429_query,
        p_retry_after: args.p_retry_after,
        p502: args.p502,
        p_lost: args.p_lost,
        fail_rate: args.fail_rate,
        url_ttl: args.url_ttl,
        seed: args.seed,
        state: None,
    })
}

pub fn run(global: &Global, args: &SimArgs) -> Result<u8, Error> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(serve(global, config, args.port))
}

/// How to point a run at the simulator: the variables to export, with a key it accepts.
pub fn startup_hint(url: &str, key_required: bool, provider: SimProvider) -> String {
    let key = if key_required {
        "<the --key value>"
    } else {
        "sk-any"
    };
    if provider == SimProvider::Dashscope {
        return format!(
            "speaking DashScope's native API: POST {url}{}, GET {url}{}/{{id}} and the task list \
             (send `Authorization: Bearer {key}` and `X-DashScope-Async: enable`); point a run \
             at it:\n  DASHSCOPE_API_KEY={key} shotlist run MANIFEST --provider dashscope \
             --base-url {url}\nstats at {url}/__sim/stats; Ctrl-C stops",
            crate::sim::dashscope::CREATE_PATH,
            crate::sim::dashscope::TASKS_PATH,
        );
    }
    format!(
        "point a run at it:\n  export GRAVITEX_BASE_URL={url} GRAVITEX_API_KEY={key}\n  shotlist run MANIFEST\n\
         (or `shotlist run MANIFEST --base-url {url}`); stats at {url}/__sim/stats; Ctrl-C stops"
    )
}

async fn serve(global: &Global, config: SimConfig, port: u16) -> Result<u8, Error> {
    let key_required = config.key.is_some();
    let provider = config.provider;
    let handle = crate::sim::start(config, port).await.map_err(|e| {
        Error::io(
            format!("cannot listen on 127.0.0.1:{port} (is it in use? --port 0 picks a free one)"),
            e,
        )
    })?;
    super::print(&format!(
        "shotlist sim listening on {}\n",
        handle.base_url()
    ))?;
    if !global.quiet {
        eprintln!(
            "{}",
            startup_hint(&handle.base_url(), key_required, provider)
        );
    }
    stop_signal().await;
    handle.shutdown().await;
    if !global.quiet {
        eprintln!("shotlist sim stopped");
    }
    Ok(crate::error::exit::OK)
}

#[cfg(unix)]
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
