//! `ringsidectl`: the operator CLI. Talks to ringside-ctld (`--socket`) or to one ringside
//! process (`--proxy`) with the protocol of `docs/control-protocol.md`.
//!
//! Output: text for people, `--json` (the reply as sent on the wire) for scripts. Exit status:
//! 0 on success, 1 on any failure, with a one-line message on stderr (and, for a refused
//! configuration, one line per error). `cli.rs` holds the arguments, `commands/` one file per
//! group of subcommands, `output.rs` the text rendering.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, Get, Op, Overrides, Shell};
use commands::{config, edits, proxy, rollout, status, Failure};
use ringside_wire::{EndpointOp, Reply};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                let reply = Reply::Error {
                    message: f.message,
                    errors: f.errors,
                };
                println!("{}", commands::to_json(&reply));
            } else {
                eprintln!("ringsidectl: {}", f.message);
                for e in &f.errors {
                    eprintln!("  {e}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ringsidectl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Status { selector } => status::status(cli, selector.as_ref()),
        Command::Rollout(r) => rollout::rollout(cli, r),
        Command::Apply { file, no_wait } => config::apply(cli, file, *no_wait),
        Command::Diff { file, show_secrets } => config::diff(cli, file, *show_secrets),
        Command::Get(Get::Config {
            node,
            generation,
            show_secrets,
        }) => config::get(cli, node, *generation, *show_secrets),
        Command::Rollback { node, to } => config::rollback(cli, node, *to),
        Command::Endpoints {
            op,
            cluster,
            addresses,
            node,
        } => {
            let op = match op {
                Op::Set => EndpointOp::Set,
                Op::Add => EndpointOp::Add,
                Op::Remove => EndpointOp::Remove,
                Op::Show => return proxy::endpoints_show(cli, cluster, addresses),
            };
            edits::endpoints(cli, op, cluster, addresses, node)
        }
        Command::Weights {
            route,
            weights,
            node,
        } => edits::weights(cli, route, weights, node),
        Command::Overrides(Overrides::Clear { key, node }) => {
            edits::clear_overrides(cli, key.as_deref(), node)
        }
        Command::Drain => proxy::drain(cli),
        Command::LogLevel { level } => proxy::log_level(cli, level.as_deref()),
        Command::Upgrade { binary, args } => proxy::upgrade(cli, binary, args),
    }
}
