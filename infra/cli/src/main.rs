//! `hrws`: answers "what happened to this person?" against the local stack or AWS (the usual
//! credentials and `AWS_ENDPOINT_URL_*` apply), and posts HR events.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::eventbridge::EventBridgeBus;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::domain::audit::{AuditActions, AuditRules, OnMismatched, OnMissing, OnOrphaned, Remedy, Subject};
use shared::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use shared::domain::profile::Profiles;
use shared::domain::time::Timestamp;
use shared::ports::{
    AuditStore as _, GuardConfig, MAX_TERMINATIONS_PER_WINDOW, StateStore, WorkspaceInfo, WorkspacesApi,
};
use shared::services::audit::{AuditConfig, Auditor};
use shared::services::guard::GuardOperator;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Status of the HR → WorkSpaces pipeline")]
struct Cli {
    /// The pipeline's table.
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "")]
    table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summary by state and a line per employee.
    Status,
    /// One employee: state, WorkSpace (as DescribeWorkspaces reports it), the move under way or
    /// the last one's note, and every event with its outcome and reason.
    Employee { employee_id: String },
    /// Post HR events (a JSON object or array) to the HR events queue.
    Post {
        file: PathBuf,
        #[arg(long, env = "HR_EVENTS_QUEUE_URL")]
        queue_url: String,
        /// Give each message its own deduplication id, so SQS passes resends on to the pipeline.
        #[arg(long)]
        unique_dedup: bool,
    },
    /// Upgrade step from versions without user-name owners: gives every employee who is not
    /// terminated the claim on their user name, and lists names two employees ask for (each
    /// such pair needs a person to decide; the first one listed keeps the name).
    ClaimNames {
        /// List what would be claimed and the conflicts; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The mass-termination guard: whether it holds terminations (tripped), since when and how
    /// many, what the current window admitted, and the employees held. `hrws guard release`
    /// un-trips it and releases them all; `--employee` releases one.
    Guard {
        #[command(subcommand)]
        action: Option<GuardAction>,
    },
    /// The drift audit now, as the scheduled auditor runs it: lists every WorkSpace of the
    /// directories (the profiles' and every directory a record names), compares them with the
    /// table, records the findings on each employee (or the unowned WorkSpace) and prints them:
    /// missing, orphaned, mismatched, unhealthy. Report only, unless `--on-missing`,
    /// `--on-mismatched` or `--on-orphaned` say to act (as the auditor's settings do).
    Audit {
        /// The WORKSPACE_PROFILES JSON the pipeline runs with, for its directories (the auditor
        /// function's, so both audit the same).
        #[arg(long, env = "WORKSPACE_PROFILES")]
        profiles: String,
        /// The stack's lifecycle event bus (output LifecycleEventBusName): a finding that opens
        /// is announced there (Drift Found), as the auditor function does.
        #[arg(long, env = "EVENT_BUS_NAME")]
        event_bus: String,
        /// A WorkSpace ERROR, UNHEALTHY or SUSPENDED longer than this (across audits) is reported.
        #[arg(long, default_value_t = 720)]
        unhealthy_after_minutes: i64,
        /// DescribeWorkspaces calls per second at most (the pipeline shares the account's rate).
        #[arg(long, default_value_t = 1.0)]
        calls_per_second: f64,
        /// `request-again`: a new WorkSpace for an active employee whose WorkSpace is gone
        /// (needs --requests-queue-url).
        #[arg(long, env = "AUDIT_ON_MISSING", default_value = "report")]
        on_missing: OnMissing,
        /// `reapply`: the profile applied again, through the mover path, to a WorkSpace that
        /// differs from it.
        #[arg(long, env = "AUDIT_ON_MISMATCHED", default_value = "report")]
        on_mismatched: OnMismatched,
        /// `terminate-managed`: an orphan found by two audits in a row, with the managed tag and
        /// without the protect tag, is terminated if the mass-termination guard admits it.
        #[arg(long, env = "AUDIT_ON_ORPHANED", default_value = "report")]
        on_orphaned: OnOrphaned,
        /// How long an orphan stays reported (found by audits) before it may be terminated.
        #[arg(long, env = "AUDIT_ORPHAN_AFTER_MINUTES", default_value_t = 1440)]
        orphan_after_minutes: i64,
        /// The provisioner's queue (output WorkspaceRequestsQueueUrl), for `request-again`.
        #[arg(long, env = "WORKSPACE_REQUESTS_QUEUE_URL", default_value = "")]
        requests_queue_url: String,
        /// The mass-termination guard's limit and window, as the terminator's (0: off).
        #[arg(long, env = "TERMINATION_GUARD_LIMIT", default_value_t = 50)]
        guard_limit: u32,
        #[arg(long, env = "TERMINATION_GUARD_WINDOW_MINUTES", default_value_t = 60)]
        guard_window_minutes: i64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait until employees reach the states in a JSON map {employee_id: state}, showing progress.
    /// `rejected`: the employee's events were all rejected; `rehired`: active again after a
    /// terminated WorkSpace; `moved`: active again after a move that reached its profile (no move
    /// under way, none stopped short).
    Wait {
        expect: PathBuf,
        #[arg(long, default_value_t = 300)]
        timeout_s: u64,
    },
    /// Read a lifecycle event subscriber's queue (a queue a rule on the stack's event bus
    /// targets, as an HR or ticketing system would): prints each event and deletes it, then a
    /// count per detail-type. Duplicates (at least once) carry the same `detail.id`.
    Events {
        #[arg(long, env = "LIFECYCLE_EVENTS_QUEUE_URL")]
        queue_url: String,
        /// Print only these employees' events, and those of `--detail-type` (all are read and
        /// counted); without either, print every event.
        #[arg(long)]
        employee: Vec<String>,
        #[arg(long)]
        detail_type: Vec<String>,
    },
}

#[derive(Subcommand)]
enum GuardAction {
    /// Terminate what the guard holds once the leaves are confirmed genuine: without
    /// `--employee`, un-trips the guard (the window counts afresh) and releases every held
    /// termination; with it, releases those employees only. A leave withdrawn instead: send a
    /// cancel naming it (the same WorkSpace is given back).
    Release {
        #[arg(long)]
        employee: Vec<String>,
        #[arg(long, env = "TERMINATION_REQUESTS_QUEUE_URL")]
        queue_url: String,
    },
}

fn time(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sdk = aws_config::load_from_env().await;
    let store = || -> anyhow::Result<DynamoStore> {
        if cli.table.is_empty() {
            bail!("the table is not set: --table or TABLE_NAME (source .local/stack.env for the local stack)");
        }
        Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), cli.table.clone()))
    };
    match &cli.command {
        Command::Status => status(&store()?).await,
        Command::Employee { employee_id } => {
            let workspaces = AwsWorkspaces::new(aws_sdk_workspaces::Client::new(&sdk));
            employee(&store()?, &workspaces, employee_id).await
        }
        Command::Post { file, queue_url, unique_dedup } => {
            post(&aws_sdk_sqs::Client::new(&sdk), file, queue_url, *unique_dedup).await
        }
        Command::ClaimNames { dry_run } => claim_names(&store()?, *dry_run).await,
        Command::Guard { action: None } => guard(store()?, &sdk).await,
        Command::Guard { action: Some(GuardAction::Release { employee, queue_url }) } => {
            release(operator(store()?, &sdk, queue_url), employee).await
        }
        Command::Audit {
            profiles,
            event_bus,
            unhealthy_after_minutes,
            calls_per_second,
            on_missing,
            on_mismatched,
            on_orphaned,
            orphan_after_minutes,
            requests_queue_url,
            guard_limit,
            guard_window_minutes,
            json,
        } => {
            let directories = if profiles.trim().is_empty() {
                Default::default()
            } else {
                Profiles::from_json(profiles)
                    .map_err(|e| anyhow::anyhow!("WORKSPACE_PROFILES is invalid: {e}"))?
                    .directories()
            };
            if !(calls_per_second.is_finite() && *calls_per_second > 0.0) {
                bail!("--calls-per-second must be a positive number");
            }
            if *on_missing == OnMissing::RequestAgain && requests_queue_url.is_empty() {
                bail!("--on-missing request-again needs --requests-queue-url (WORKSPACE_REQUESTS_QUEUE_URL)");
            }
            if *guard_limit > MAX_TERMINATIONS_PER_WINDOW || !(1..=10_080).contains(guard_window_minutes) {
                bail!("--guard-limit must be 0 (off) to 1000, --guard-window-minutes 1-10080");
            }
            let guard = (*guard_limit > 0)
                .then_some(GuardConfig { limit: *guard_limit, window_ms: guard_window_minutes * 60_000 });
            if *on_orphaned == OnOrphaned::TerminateManaged && (guard.is_none() || *orphan_after_minutes < 0) {
                bail!(
                    "--on-orphaned terminate-managed needs the guard on (--guard-limit above 0, as the stack's TerminationGuardLimit) and --orphan-after-minutes of at least 0"
                );
            }
            let auditor = Auditor {
                store: store()?,
                workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
                events: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), event_bus.clone()),
                requests: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), requests_queue_url.clone()),
                clock: std::sync::Arc::new(shared::ports::SystemClock),
                config: AuditConfig {
                    directories,
                    rules: AuditRules { unhealthy_after_ms: unhealthy_after_minutes.max(&0) * 60_000 },
                    call_interval_ms: (1000.0 / calls_per_second).ceil() as u64,
                    actions: AuditActions {
                        on_missing: *on_missing,
                        on_mismatched: *on_mismatched,
                        on_orphaned: *on_orphaned,
                        orphan_after_ms: orphan_after_minutes * 60_000,
                    },
                    guard,
                },
            };
            audit(&auditor, *json).await
        }
        Command::Events { queue_url, employee, detail_type } => {
            events(&aws_sdk_sqs::Client::new(&sdk), queue_url, employee, detail_type).await
        }
        Command::Wait { expect, timeout_s } => wait(&store()?, expect, Duration::from_secs(*timeout_s)).await,
    }
}

async fn audit(
    auditor: &Auditor<DynamoStore, AwsWorkspaces, EventBridgeBus, SqsQueue>,
    json: bool,
) -> anyhow::Result<()> {
    let report = auditor.run().await.context("the audit failed (what it recorded before stands; run it again)")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "audited {}: directories {}; {} employees, {} WorkSpaces listed; {} DescribeWorkspaces calls",
        time(report.audited_ms),
        report.directories.join(", "),
        report.employees_checked,
        report.workspaces_listed,
        report.describe_calls
    );
    let counts: Vec<String> = report.counts.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    println!(
        "drift: {} ({} new, {} resolved; {} seen to be changes under way on a second look)",
        counts.join(", "),
        report.opened,
        report.resolved,
        report.dropped_on_second_look
    );
    for finding in &report.findings {
        let subject = match finding.subject() {
            Subject::Employee(id) => format!("employee {id}"),
            Subject::Workspace(id) => format!("workspace {id}"),
        };
        println!("  {:<22} {}", subject, finding.summary());
    }
    if !report.actions.is_empty() {
        let done = report.actions.iter().filter(|a| a.done).count();
        println!("actions: {done} done, {} not", report.actions.len() - done);
    }
    for action in &report.actions {
        let (what, whom) = match &action.remedy {
            Remedy::RequestAgain { employee_id, .. } => ("request-again", format!("employee {employee_id}")),
            Remedy::Reapply { employee_id, .. } => ("reapply", format!("employee {employee_id}")),
            Remedy::Terminate { workspace_id, .. } => ("terminate", format!("workspace {workspace_id}")),
        };
        let mark = if action.done { "done" } else { "not done" };
        println!("  {what:<14} {whom:<22} {mark}: {}", action.outcome);
    }
    Ok(())
}

async fn status(store: &DynamoStore) -> anyhow::Result<()> {
    let mut employees = store.scan_employees().await?;
    employees.sort_by(|a, b| a.employee_id.cmp(&b.employee_id));
    println!(
        "{:<10} {:<12} {:<12} {:<14} {:<12} {:<24} note",
        "employee", "user", "state", "workspace", "profile", "since"
    );
    for e in &employees {
        let mut notes = Vec::new();
        if let Some(since) = e.stuck_since_ms {
            notes.push(format!("STUCK (flagged {})", time(since)));
        }
        match (&e.failure_code, &e.failure_message) {
            (Some(code), Some(message)) => notes.push(format!("{code}: {message}")),
            (Some(code), None) => notes.push(code.clone()),
            _ => {}
        }
        if let Some(since) = e.held_since_ms {
            notes.push(format!("termination HELD by the guard since {} (hrws guard)", time(since)));
        } else if let Some(until) = e.grace_until_ms.filter(|_| e.state.is_leaving()) {
            notes.push(format!("access revoked; kept until {}", time(until)));
        }
        if e.rehire_pending {
            notes.push("rehire waiting for the old WorkSpace to go".into());
        }
        if let Some(work) = &e.moving {
            let relocating = work.relocation.as_ref().map(|r| r.profile.directory_id.as_str());
            let on = match (&work.migrating_to, relocating, &work.waiting) {
                (Some(to), _, _) => format!("migrating to {to}"),
                (None, Some(dir), Some(why)) => format!("to directory {dir}; waits: {why}"),
                (None, None, Some(why)) => format!("waits: {why}"),
                (None, _, None) => "next step at the next run".to_owned(),
            };
            notes.push(format!("move {}: {on}", work.event_id));
        } else if let Some(note) = &e.move_note {
            notes.push(note.clone());
        }
        if !e.previous_workspaces.is_empty() {
            let ids: Vec<&str> = e.previous_workspaces.iter().map(|p| p.workspace_id.as_str()).collect();
            notes.push(format!("earlier: {}", ids.join(", ")));
        }
        let failure = notes.join("; ");
        println!(
            "{:<10} {:<12} {:<12} {:<14} {:<12} {:<24} {failure}",
            e.employee_id,
            e.username.as_deref().unwrap_or("-"),
            e.state.as_str(),
            e.workspace_id.as_deref().unwrap_or("-"),
            e.profile_name.as_deref().unwrap_or("-"),
            time(e.state_since_ms)
        );
    }
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &employees {
        *by_state.entry(e.state.as_str()).or_default() += 1;
    }
    let mut summary: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    if !by_state.contains_key(EmployeeState::Moving.as_str()) {
        summary.push(format!("0 {}", EmployeeState::Moving.as_str()));
    }
    let stuck = employees.iter().filter(|e| e.stuck_since_ms.is_some()).count();
    summary.push(format!("{stuck} stuck"));
    let stopped = employees.iter().filter(|e| e.moving.is_none() && e.move_note.is_some()).count();
    if stopped > 0 {
        summary.push(format!("{stopped} with a move stopped short"));
    }
    println!("\n{} employees: {}", employees.len(), summary.join(", "));
    Ok(())
}

async fn employee(store: &DynamoStore, workspaces: &AwsWorkspaces, id: &str) -> anyhow::Result<()> {
    match store.employee(id).await? {
        Some(e) => {
            println!("employee   {}", e.employee_id);
            println!("user       {}", e.username.as_deref().unwrap_or("-"));
            println!("state      {} since {}", e.state.as_str(), time(e.state_since_ms));
            println!("workspace  {}", e.workspace_id.as_deref().unwrap_or("-"));
            println!("profile    {}", e.profile_name.as_deref().unwrap_or("-"));
            print_move(&e);
            // A migration's or relocation's other WorkSpace too.
            let other = e.moving.as_ref().and_then(|m| m.other_workspace()).map(str::to_owned);
            let ids: Vec<String> = e.workspace_id.iter().cloned().chain(other).collect();
            if !ids.is_empty() {
                print_workspaces(workspaces, &ids).await;
            }
            if let Some(code) = &e.failure_code {
                println!("failure    {code}: {}", e.failure_message.as_deref().unwrap_or(""));
            }
            if let Some(since) = e.stuck_since_ms {
                println!("stuck      flagged at {} (past the deadline for {})", time(since), e.state.as_str());
            }
            for past in &e.previous_workspaces {
                println!("earlier    {} terminated {}", past.workspace_id, time(past.terminated_ms));
            }
            if let Some(since) = e.held_since_ms {
                println!("held       since {}: {}", time(since), e.hold_reason.as_deref().unwrap_or(""));
            }
            if let Some(at) = e.access_revoked_ms {
                println!("access     revoked at {} (ADMIN_MAINTENANCE: no one can log in; data kept)", time(at));
            }
            if let Some(until) = e.grace_until_ms {
                println!("grace      the WorkSpace is kept until {}, then terminated", time(until));
            }
            if e.user_disabled {
                println!("directory  the user was disabled by the leave");
            }
            if let Some(restore) = &e.restore_event_id {
                println!("restoring  the same WorkSpace given back, for {restore}");
            }
            if let Some(note) = &e.grace_note {
                println!("grace      {note}");
            }
            if e.rehire_pending {
                println!("rehire     waiting for the previous WorkSpace to be confirmed gone");
            }
            if let (Some(user), Some(profile)) = (&e.username, &e.profile) {
                let holder = store.name_holder(&profile.directory_id, user).await?;
                let owner = match holder.as_deref() {
                    Some(h) if h == e.employee_id => "held by this employee".to_owned(),
                    Some(h) => format!("held by employee {h}"),
                    None => "held by no one".to_owned(),
                };
                println!("user name  {user} in {}: {owner}", profile.directory_id);
            }
        }
        None => println!("employee   {id}: no lifecycle record"),
    }
    if let Some(drift) = store.drift_of(&Subject::Employee(id.to_owned())).await? {
        for finding in &drift.findings {
            println!("drift      {} (open since {})", finding.summary(), time(drift.since_ms));
        }
    }
    for held in store.scheduled_for(id).await? {
        println!("held       {} ({}) takes effect {}", held.event_id, held.kind, time(held.effective_ms));
    }
    let history = store.history(id).await?;
    println!("\nevents ({}):", history.len());
    for h in history {
        println!(
            "  {}  {:<6} {:<24} {:<9} {}",
            time(h.recorded_ms),
            h.kind.as_deref().unwrap_or("?"),
            h.event_id.as_deref().unwrap_or("?"),
            h.outcome.as_str(),
            h.reason
        );
    }
    Ok(())
}

/// The move under way (what it waits on, a migration's new WorkSpace), the last move, and the
/// note of one that stopped short.
fn print_move(e: &EmployeeRecord) {
    if let Some(work) = &e.moving {
        println!("moving     for {}", work.event_id);
        if let Some(to) = &work.migrating_to {
            let asked = work.migrate_asked_ms.map(|ms| format!(" (asked {})", time(ms))).unwrap_or_default();
            println!("migrating  to {to}{asked}: the record keeps the source until it is AVAILABLE");
        }
        if let Some(r) = &work.relocation {
            println!(
                "relocating from directory {} to {} (profile {})",
                r.from_directory_id, r.profile.directory_id, r.profile_name
            );
            match (&r.workspace_id, &r.discard) {
                (Some(new), _) => println!("           new WorkSpace {new}: the record switches to it once AVAILABLE"),
                (None, Some(old)) => {
                    let how = if r.discard_terminating { "being terminated" } else { "to be terminated" };
                    println!("           {old} {how}");
                }
                (None, None) => println!("           the new WorkSpace is requested"),
            }
        }
        match (&work.waiting, work.due_ms) {
            (Some(why), Some(due)) => println!("waits      {why} (looked at again from {})", time(due)),
            (Some(why), None) => println!("waits      {why}"),
            (None, _) => println!("waits      nothing: the next step at the next reconciler run"),
        }
        if let Some(since) = work.waiting_since_ms {
            println!("           since {}", time(since));
        }
    }
    if let Some(last) = &e.last_move {
        println!("last move  {} (occurred {})", last.event_id, time(last.occurred_ms));
    }
    if let Some(note) = &e.move_note {
        println!("move note  {note}");
    }
}

/// The WorkSpaces as DescribeWorkspaces reports them now; a failure to describe is shown, not
/// fatal (the record is the answer; this is a look at the service).
async fn print_workspaces(workspaces: &AwsWorkspaces, ids: &[String]) {
    match workspaces.describe_workspaces(ids).await {
        Ok(found) => {
            for id in ids {
                match found.iter().find(|w| &w.workspace_id == id) {
                    Some(ws) => println!("described  {}", describe(ws)),
                    None => println!("described  {id}: not listed by DescribeWorkspaces (gone, or not visible yet)"),
                }
            }
        }
        Err(err) => println!("described  not available: {err}"),
    }
}

fn describe(ws: &WorkspaceInfo) -> String {
    let mut parts = vec![format!("{} {}", ws.workspace_id, ws.state)];
    parts.push(format!("bundle {}", ws.bundle_id.as_deref().unwrap_or("?")));
    if let Some(p) = &ws.properties {
        let mode = p.running_mode.as_deref().unwrap_or("?");
        match p.auto_stop_minutes {
            Some(m) => parts.push(format!("{mode} ({m} min)")),
            None => parts.push(mode.to_owned()),
        }
        parts.push(format!("compute {}", p.compute_type.as_deref().unwrap_or("?")));
        let gib = |v: Option<i32>| v.map_or_else(|| "?".to_owned(), |g| g.to_string());
        parts.push(format!("root {} GiB, user {} GiB", gib(p.root_volume_gib), gib(p.user_volume_gib)));
    }
    if let Some(code) = &ws.error_code {
        parts.push(format!("error {code}: {}", ws.error_message.as_deref().unwrap_or("")));
    }
    parts.join(", ")
}

async fn claim_names(store: &DynamoStore, dry_run: bool) -> anyhow::Result<()> {
    use shared::domain::lifecycle::Step;
    use shared::ports::StoreError;
    let mut employees = store.scan_employees().await?;
    // Live WorkSpaces first, then the oldest: who keeps a name two employees ask for.
    employees.sort_by_key(|e| (e.workspace_id.is_none(), e.state_since_ms, e.employee_id.clone()));
    let (mut claimed, mut held, mut conflicts) = (0, 0, 0);
    for e in employees.iter().filter(|e| e.state != EmployeeState::Terminated) {
        let (Some(user), Some(profile)) = (&e.username, &e.profile) else { continue };
        match store.name_holder(&profile.directory_id, user).await? {
            Some(h) if h == e.employee_id => held += 1,
            Some(h) => {
                conflicts += 1;
                println!(
                    "conflict   {user} in {}: held by {h}, also asked for by {}",
                    profile.directory_id, e.employee_id
                );
            }
            None if dry_run => {
                claimed += 1;
                println!("would claim {user} in {} for {}", profile.directory_id, e.employee_id);
            }
            None => {
                let now = shared::domain::time::Timestamp::now().millis();
                let Some(Step::Save { record: next, expected_version, claim: Some(claim) }) =
                    shared::domain::lifecycle::claim_existing_name(e, now)
                else {
                    continue;
                };
                match store.save_joiner(&next, expected_version, &claim).await {
                    Ok(()) => claimed += 1,
                    Err(StoreError::NameHeld { holder }) => {
                        conflicts += 1;
                        println!(
                            "conflict   {user} in {}: held by {holder}, also asked for by {}",
                            profile.directory_id, e.employee_id
                        );
                    }
                    Err(err) => bail!("claiming {user} for {}: {err} (run again: done claims stay)", e.employee_id),
                }
            }
        }
    }
    let verb = if dry_run { "to claim" } else { "claimed" };
    println!("{claimed} {verb}, {held} already held, {conflicts} conflicts");
    if conflicts > 0 {
        bail!("{conflicts} user names are asked for by two employees: decide who keeps each (a leave for the other)");
    }
    Ok(())
}

type Operator = GuardOperator<DynamoStore, SqsQueue>;

fn operator(store: DynamoStore, sdk: &aws_config::SdkConfig, queue_url: &str) -> Operator {
    GuardOperator {
        store,
        terminations: SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queue_url.to_owned()),
        clock: std::sync::Arc::new(shared::ports::SystemClock),
    }
}

async fn guard(store: DynamoStore, sdk: &aws_config::SdkConfig) -> anyhow::Result<()> {
    let now = Timestamp::now().millis();
    print_guard(&store.guard_status().await?, now);
    // Listing needs no queue.
    let operator = operator(store, sdk, "");
    let held = operator.held().await?;
    println!("held now   {} employees", held.len());
    for e in held {
        println!(
            "  {:<12} {:<10} {:<16} held since {}",
            e.employee_id,
            e.state.as_str(),
            e.workspace_id.as_deref().unwrap_or("-"),
            e.held_since_ms.map(time).unwrap_or_default()
        );
        if let Some(note) = &e.grace_note {
            println!("               {note}");
        }
    }
    Ok(())
}

async fn release(operator: Operator, employees: &[String]) -> anyhow::Result<()> {
    if employees.is_empty() {
        let before = operator.status().await?;
        let released = operator.release_all().await?;
        match before.tripped_since_ms {
            Some(since) => {
                println!("reset      the guard tripped at {} and held {} requests", time(since), before.held)
            }
            None => println!("reset      the guard was not tripped; the current window counts afresh"),
        }
        println!("released   {released} held terminations: requested again, not counted by the guard");
    } else {
        for id in employees {
            let decision = operator.release(id).await?;
            println!("{id:<12} {:?}", decision.verdict);
        }
    }
    print_guard(&operator.status().await?, Timestamp::now().millis());
    Ok(())
}

fn print_guard(g: &shared::ports::GuardStatus, now: i64) {
    match g.tripped_since_ms {
        Some(since) => {
            println!("guard      TRIPPED since {}: every termination is held", time(since));
            println!("tripped by {}", g.tripped_by.as_deref().unwrap_or("?"));
            let last = g.last_held_ms.map_or_else(|| "-".to_owned(), time);
            println!("held       {} termination requests (the latest at {last})", g.held);
            println!("           once the leaves are confirmed: hrws guard release (or cancel a leave)");
        }
        None => println!("guard      armed: terminations are admitted up to the limit per window"),
    }
    match (g.window_start_ms, g.window_ms) {
        (Some(start), Some(length)) => {
            let end = start.saturating_add(length);
            if now < end {
                println!(
                    "window     {} admitted in the window from {} to {}",
                    g.admitted_in_window,
                    time(start),
                    time(end)
                );
            } else {
                println!(
                    "window     none admitted in the current one (the last window, {} to {}, admitted {})",
                    time(start),
                    time(end),
                    g.admitted_in_window
                );
            }
        }
        _ => println!("window     nothing counted yet"),
    }
    if let Some(reset) = g.last_reset_ms {
        println!("reset      {}", time(reset));
    }
}

/// Drains a subscriber queue of lifecycle events (EventBridge envelopes), printing them.
async fn events(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    employees: &[String],
    detail_types: &[String],
) -> anyhow::Result<()> {
    let mut received: Vec<Value> = Vec::new();
    loop {
        // A short wait: SQS may answer an empty receive while messages are still there.
        let out =
            sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            match serde_json::from_str::<Value>(m.body().unwrap_or_default()) {
                Ok(event) => received.push(event),
                Err(e) => eprintln!("not an event ({e}): {}", m.body().unwrap_or_default()),
            }
            sqs.delete_message().queue_url(queue_url).set_receipt_handle(m.receipt_handle).send().await?;
        }
    }
    // In the order the changes happened (a queue does not keep it).
    received.sort_by(|a, b| {
        let key = |e: &Value| {
            (
                e["detail"]["time"].as_str().unwrap_or_default().to_owned(),
                e["detail"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut by_type: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &received {
        let d = &e["detail"];
        by_type.entry(text(&e["detail-type"])).or_default().insert(text(&d["id"]));
        let everything = employees.is_empty() && detail_types.is_empty();
        let of_employee = employees.iter().any(|id| d["employee_id"].as_str() == Some(id));
        let of_type = detail_types.iter().any(|t| e["detail-type"].as_str() == Some(t));
        if everything || of_employee || of_type {
            let reason = d["reason"].as_str().map(|r| format!("  ({r})")).unwrap_or_default();
            println!(
                "{}  {:<21} {:<8} {:<14} hr event {}{reason}",
                text(&d["time"]),
                text(&e["detail-type"]),
                text(&d["employee_id"]),
                text(&d["workspace_id"]),
                text(&d["hr_event_id"]),
            );
        }
    }
    let distinct: usize = by_type.values().map(BTreeSet::len).sum();
    let counts: Vec<String> = by_type.iter().map(|(t, ids)| format!("{} {t}", ids.len())).collect();
    println!("lifecycle events: {} received, {distinct} distinct: {}", received.len(), counts.join(", "));
    Ok(())
}

async fn post(sqs: &aws_sdk_sqs::Client, file: &PathBuf, queue_url: &str, unique_dedup: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let events: Vec<Value> =
        match serde_json::from_str::<Value>(&text).with_context(|| format!("parsing {}", file.display()))? {
            Value::Array(list) => list,
            single => vec![single],
        };
    let fifo = queue_url.ends_with(".fifo");
    for chunk in events.chunks(10) {
        let mut entries = Vec::new();
        for (i, event) in chunk.iter().enumerate() {
            let mut entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(event.to_string());
            if fifo {
                // Per-employee order: one message group per employee.
                // A group id is 1-128 characters: an employee id that is not valid gets a fixed group.
                let group = event
                    .pointer("/employee/employee_id")
                    .and_then(Value::as_str)
                    .filter(|id| shared::domain::names::EmployeeId::parse(id).is_ok())
                    .unwrap_or("unknown");
                entry = entry.message_group_id(group);
                if unique_dedup {
                    entry = entry.message_deduplication_id(uuid::Uuid::new_v4().simple().to_string());
                }
            }
            entries.push(entry.build()?);
        }
        let out = sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await?;
        if let Some(f) = out.failed().first() {
            bail!("SQS refused {} messages: {} {}", out.failed().len(), f.code(), f.message().unwrap_or_default());
        }
    }
    println!("posted {} events to {queue_url}", events.len());
    Ok(())
}

async fn wait(store: &DynamoStore, expect: &PathBuf, timeout: Duration) -> anyhow::Result<()> {
    let expected: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(expect).with_context(|| format!("reading {}", expect.display()))?,
    )?;
    let start = Instant::now();
    let ids: Vec<String> = expected.keys().cloned().collect();
    loop {
        let records: HashMap<String, EmployeeRecord> =
            store.employees(&ids).await?.into_iter().map(|e| (e.employee_id.clone(), e)).collect();
        let mut reached = 0;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (id, want) in &expected {
            let now = match records.get(id) {
                Some(e) if want == "moved" && e.state == EmployeeState::Active && e.last_move.is_some() => {
                    match (&e.moving, &e.move_note) {
                        (None, None) => "moved".to_owned(),
                        _ => "move stopped".to_owned(),
                    }
                }
                Some(e) if e.state == EmployeeState::Active && !e.previous_workspaces.is_empty() => {
                    "rehired".to_owned()
                }
                Some(e) => e.state.as_str().to_owned(),
                None => {
                    let history = store.history(id).await?;
                    if !history.is_empty() && history.iter().all(|h| h.outcome == EventOutcome::Rejected) {
                        "rejected".to_owned()
                    } else {
                        "waiting".to_owned()
                    }
                }
            };
            if &now == want || (want == "active" && now == "rehired") {
                reached += 1;
            }
            *counts.entry(now).or_default() += 1;
        }
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        println!(
            "[{:>5.1} s] {reached}/{} as expected: {}",
            start.elapsed().as_secs_f64(),
            expected.len(),
            summary.join(", ")
        );
        if reached == expected.len() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            for (id, want) in &expected {
                let got = records.get(id).map_or("(no record)", |e| e.state.as_str());
                if got != want {
                    eprintln!("  {id}: expected {want}, is {got}");
                }
            }
            bail!("not every employee reached the expected state within {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
