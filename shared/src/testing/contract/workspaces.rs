//! The [`WorkspacesApi`] contract: what the pipeline relies on from WorkSpaces, as the simulator
//! shows it through the real adapter and the fake shows it in memory.

use super::ok;
use crate::domain::profile::{Profile, RunningMode};
use crate::domain::workspace::{
    Call, Disposition, MAX_PER_CALL, MAX_TAGS, PropertyChange, UNDEFINED_USER, WorkspaceState, classify,
};
use crate::ports::{
    CreateItem, CreateResponse, MAX_TAGGED_PER_READ, PortError as _, WorkspaceInfo, WorkspacePage, WorkspaceTags,
    WorkspacesApi, WorkspacesError,
};
use crate::testing::ManualClock;
use std::collections::BTreeMap;
use std::future::Future;

/// How the suite lets the service's time pass: the fake's clock is moved, the simulator is
/// waited for.
pub trait Passage: Sync {
    /// Lets about `ms` milliseconds of the service's time pass.
    fn pass(&self, ms: i64) -> impl Future<Output = ()> + Send;
}

impl Passage for ManualClock {
    async fn pass(&self, ms: i64) {
        self.advance(ms);
    }
}

/// Where the suite creates WorkSpaces: a registered directory, an existing bundle, three users
/// of that directory who have no WorkSpace yet, and how long to let pass between two polls.
#[derive(Debug, Clone)]
pub struct WorkspacesSetup {
    pub directory_id: String,
    pub bundle_id: String,
    pub users: [String; 3],
    pub poll_ms: i64,
    /// Polls before a transition counts as never happening.
    pub max_polls: usize,
    /// Another bundle MigrateWorkspace can move to.
    pub other_bundle_id: String,
    /// The cooldown of volume growth and compute increase the service runs with (6 hours in
    /// AWS; configured short for the suite).
    pub growth_cooldown_ms: i64,
}

fn profile(setup: &WorkspacesSetup) -> Profile {
    Profile {
        directory_id: setup.directory_id.clone(),
        bundle_id: setup.bundle_id.clone(),
        running_mode: RunningMode::AutoStop,
        auto_stop_minutes: None,
        compute_type: None,
        root_volume_gib: None,
        user_volume_gib: None,
        root_volume_encrypted: false,
        user_volume_encrypted: false,
        kms_key: None,
        protocols: Vec::new(),
        tags: Default::default(),
        user_decoupled: false,
    }
}

fn item(setup: &WorkspacesSetup, user: &str) -> CreateItem {
    CreateItem {
        directory_id: setup.directory_id.clone(),
        user_name: user.into(),
        workspace_name: None,
        profile: profile(setup),
    }
}

fn refused_as_invalid<T: std::fmt::Debug>(what: &str, result: Result<T, WorkspacesError>) {
    match result {
        Err(WorkspacesError::Service { code, retryable: false, .. }) if code == "ValidationException" => {}
        other => panic!("{what}: expected a non-retryable ValidationException, got {other:?}"),
    }
}

async fn state_of<W: WorkspacesApi>(api: &W, id: &str) -> Option<WorkspaceState> {
    let listed = ok("DescribeWorkspaces", api.describe_workspaces(&[id.to_owned()]).await);
    assert!(listed.len() <= 1, "one id, at most one WorkSpace: {listed:?}");
    listed.into_iter().find(|w| w.workspace_id == id).map(|w| w.state)
}

/// Polls `id` until `done`, checking that each state seen is allowed at that point of
/// `order` (states may be skipped, never gone back to). Returns the states seen.
async fn follow<W: WorkspacesApi, P: Passage>(
    api: &W,
    time: &P,
    setup: &WorkspacesSetup,
    id: &str,
    order: &[Option<WorkspaceState>],
    done: impl Fn(&Option<WorkspaceState>) -> bool,
) -> Vec<Option<WorkspaceState>> {
    let mut seen: Vec<Option<WorkspaceState>> = Vec::new();
    let mut at = 0;
    for _ in 0..setup.max_polls {
        let state = state_of(api, id).await;
        match order.iter().skip(at).position(|s| *s == state) {
            Some(offset) => at += offset,
            None => panic!("{id}: {state:?} out of order after {seen:?} (expected the order {order:?})"),
        }
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if done(&state) {
            return seen;
        }
        time.pass(setup.poll_ms).await;
    }
    panic!("{id} never got there; saw {seen:?}");
}

fn failed_codes(response: &CreateResponse) -> Vec<(String, String)> {
    response.failed.iter().map(|f| (f.user_name.clone(), f.code.clone())).collect()
}

async fn create<W: WorkspacesApi>(api: &W, items: &[CreateItem]) -> CreateResponse {
    ok("CreateWorkspaces", api.create_workspaces(items).await)
}

/// Creation is asynchronous and answers per item; one WorkSpace per user and directory (user
/// names compared without case) until the id is gone; termination is asynchronous too and
/// answers per item; every call takes 1 to 25 items.
pub async fn workspaces<W: WorkspacesApi, P: Passage>(api: &W, time: &P, setup: &WorkspacesSetup) {
    let [u1, u2, u3] = &setup.users;
    let unknown_id = "ws-zz0000000".to_owned();

    // The 25-item limit: the whole call is refused, nothing is created.
    let too_many: Vec<CreateItem> = (0..=MAX_PER_CALL).map(|_| item(setup, u1)).collect();
    refused_as_invalid("CreateWorkspaces with 26 items", api.create_workspaces(&too_many).await);
    refused_as_invalid("CreateWorkspaces with no item", api.create_workspaces(&[]).await);
    let ids: Vec<String> = (0..=MAX_PER_CALL).map(|i| format!("ws-zz{i:07}")).collect();
    refused_as_invalid("DescribeWorkspaces with 26 ids", api.describe_workspaces(&ids).await);
    refused_as_invalid("TerminateWorkspaces with 26 ids", api.terminate_workspaces(&ids).await);
    refused_as_invalid("DescribeWorkspaces with no id", api.describe_workspaces(&[]).await);
    refused_as_invalid("TerminateWorkspaces with no id", api.terminate_workspaces(&[]).await);
    let ok25 = ok("DescribeWorkspaces with 25 unknown ids", api.describe_workspaces(&ids[..MAX_PER_CALL]).await);
    assert_eq!(ok25, Vec::new(), "unknown ids are absent");
    time.pass(setup.poll_ms).await;
    assert_eq!(ok("find", api.find_user_workspace(&setup.directory_id, u1).await), None, "nothing was created");

    // A create answers PENDING at once; the same user again (any case) in the same call exists.
    let capitalised: String = u1.chars().take(1).flat_map(char::to_uppercase).chain(u1.chars().skip(1)).collect();
    let first = create(api, &[item(setup, &capitalised), item(setup, u1)]).await;
    assert_eq!(failed_codes(&first), vec![(u1.clone(), "ResourceExists.WorkSpace".to_owned())]);
    let [pending]: [WorkspaceInfo; 1] = first.pending.try_into().unwrap_or_else(|p| panic!("one pending: {p:?}"));
    assert!(pending.workspace_id.starts_with("ws-"), "{pending:?}");
    assert_eq!(
        (pending.directory_id.as_str(), pending.user_name.as_str(), &pending.state),
        (setup.directory_id.as_str(), capitalised.as_str(), &WorkspaceState::Pending),
        "the user name as asked for"
    );
    let id1 = pending.workspace_id;

    // Maybe absent for a moment, then PENDING, then AVAILABLE.
    let order = [None, Some(WorkspaceState::Pending), Some(WorkspaceState::Available)];
    follow(api, time, setup, &id1, &order, |s| *s == Some(WorkspaceState::Available)).await;
    let found = ok("find by another case", api.find_user_workspace(&setup.directory_id, &u1.to_uppercase()).await);
    assert_eq!(
        found.as_ref().map(|w| (w.workspace_id.as_str(), &w.state)),
        Some((id1.as_str(), &WorkspaceState::Available))
    );
    let again = create(api, &[item(setup, u1)]).await;
    assert_eq!(failed_codes(&again), vec![(u1.clone(), "ResourceExists.WorkSpace".to_owned())]);
    assert!(again.pending.is_empty());
    assert_eq!(classify(Call::Create, &again.failed[0].code), Disposition::Adopt);

    // Two users in one call; DescribeWorkspaces lists the ids asked for that exist.
    let pair = create(api, &[item(setup, u2), item(setup, u3)]).await;
    assert!(pair.failed.is_empty(), "{pair:?}");
    let pair_ids: Vec<String> = pair.pending.iter().map(|w| w.workspace_id.clone()).collect();
    assert_eq!(pair_ids.len(), 2);
    let mut asked = pair_ids.clone();
    asked.push(id1.clone());
    asked.push(unknown_id.clone());
    let mut listed = Vec::new();
    for _ in 0..setup.max_polls {
        listed = ok("describe", api.describe_workspaces(&asked).await);
        if listed.len() == 3 {
            break;
        }
        time.pass(setup.poll_ms).await;
    }
    let mut listed_ids: Vec<&str> = listed.iter().map(|w| w.workspace_id.as_str()).collect();
    listed_ids.sort_unstable();
    let mut expected: Vec<&str> = asked[..3].iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(listed_ids, expected, "the three that exist, not the unknown one");

    // Terminate: per-item answers, an unknown id says it is gone; asking twice is harmless.
    let failed = ok("terminate", api.terminate_workspaces(&[id1.clone(), unknown_id.clone()]).await);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].workspace_id, unknown_id);
    assert_eq!(classify(Call::Terminate, &failed[0].code), Disposition::Gone, "{failed:?}");
    assert_eq!(ok("terminate again", api.terminate_workspaces(std::slice::from_ref(&id1)).await), Vec::new());
    // Until the id is gone the user still has it.
    let during = create(api, &[item(setup, u1)]).await;
    if during.pending.is_empty() {
        assert_eq!(failed_codes(&during), vec![(u1.clone(), "ResourceExists.WorkSpace".to_owned())]);
    } else {
        panic!("created while the previous WorkSpace was terminating: {during:?}");
    }
    let order = [Some(WorkspaceState::Terminating), Some(WorkspaceState::Terminated), None];
    follow(api, time, setup, &id1, &order, Option::is_none).await;
    assert_eq!(ok("find after termination", api.find_user_workspace(&setup.directory_id, u1).await), None);
    let failed = ok("terminate a gone id", api.terminate_workspaces(std::slice::from_ref(&id1)).await);
    assert_eq!(failed.iter().map(|f| classify(Call::Terminate, &f.code)).collect::<Vec<_>>(), vec![Disposition::Gone]);

    // Gone: the user can have a new one.
    let renewed = create(api, &[item(setup, u1)]).await;
    assert!(renewed.failed.is_empty(), "{renewed:?}");
    assert_ne!(renewed.pending[0].workspace_id, id1);
    let all: Vec<String> = renewed.pending.iter().map(|w| w.workspace_id.clone()).chain(pair_ids).collect();
    assert_eq!(ok("clean up", api.terminate_workspaces(&all).await), Vec::new());
}

/// Every page of a directory's listing, each checked to hold at most 25.
async fn list_all<W: WorkspacesApi>(api: &W, directory_id: &str) -> (Vec<WorkspaceInfo>, usize) {
    let (mut listed, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = ok("DescribeWorkspaces by directory", api.list_workspaces(directory_id, token.as_deref()).await);
        assert!(page.workspaces.len() <= MAX_PER_CALL, "a page of {}", page.workspaces.len());
        listed.extend(page.workspaces);
        pages += 1;
        token = page.next_token;
        if token.is_none() {
            return (listed, pages);
        }
    }
}

/// What the drift audit relies on: DescribeWorkspaces by directory lists each of its WorkSpaces
/// once, 25 a page, each page but the last with the token of the next; a token it never gave is
/// refused; another directory's WorkSpaces are not listed.
pub async fn directory_listing<W: WorkspacesApi, P: Passage>(api: &W, time: &P, setup: &WorkspacesSetup) {
    let wanted = MAX_PER_CALL + 5;
    let items: Vec<CreateItem> = (0..wanted)
        .map(|i| CreateItem {
            directory_id: setup.directory_id.clone(),
            user_name: UNDEFINED_USER.into(),
            workspace_name: Some(format!("listing-{i:02}")),
            profile: profile(setup),
        })
        .collect();
    let mut created = Vec::new();
    for chunk in items.chunks(MAX_PER_CALL) {
        let response = create(api, chunk).await;
        assert!(response.failed.is_empty(), "{response:?}");
        created.extend(response.pending.into_iter().map(|w| w.workspace_id));
    }
    created.sort();
    let mut seen = Vec::new();
    for _ in 0..setup.max_polls {
        let (listed, pages) = list_all(api, &setup.directory_id).await;
        seen = listed.iter().map(|w| w.workspace_id.clone()).collect();
        seen.sort();
        if seen == created {
            assert_eq!(pages, wanted.div_ceil(MAX_PER_CALL), "full pages of 25");
            assert!(listed.iter().all(|w| w.directory_id == setup.directory_id), "{listed:?}");
            break;
        }
        time.pass(setup.poll_ms).await;
    }
    assert_eq!(seen, created, "every WorkSpace of the directory once (the created ones are all it has)");
    match api.list_workspaces(&setup.directory_id, Some("not-a-token-it-gave")).await {
        Err(e) if !e.is_retryable() => {}
        other => panic!("a made-up NextToken: expected a refusal, got {other:?}"),
    }
    match api.list_workspaces("corp-legacy", None).await {
        Err(e) if !e.is_retryable() => {}
        other => panic!("a malformed directory id: expected a refusal, got {other:?}"),
    }
    let elsewhere = ok("another directory", api.list_workspaces("d-906700000f", None).await);
    assert_eq!(elsewhere, WorkspacePage::default(), "a directory without WorkSpaces lists none");
    for chunk in created.chunks(MAX_PER_CALL) {
        assert_eq!(ok("clean up", api.terminate_workspaces(chunk).await), Vec::new());
    }
}

fn refused_with<T: std::fmt::Debug>(what: &str, expected: &str, result: Result<T, WorkspacesError>) {
    match result {
        Err(WorkspacesError::Service { code, .. }) if code == expected => {}
        other => panic!("{what}: expected {expected}, got {other:?}"),
    }
}

async fn info_of<W: WorkspacesApi>(api: &W, id: &str) -> WorkspaceInfo {
    let listed = ok("DescribeWorkspaces", api.describe_workspaces(&[id.to_owned()]).await);
    listed.into_iter().find(|w| w.workspace_id == id).unwrap_or_else(|| panic!("{id} is not listed"))
}

/// Waits for a change in progress to end: UPDATING (maybe already over), then AVAILABLE.
async fn updated<W: WorkspacesApi, P: Passage>(api: &W, time: &P, setup: &WorkspacesSetup, id: &str) -> WorkspaceInfo {
    let order = [Some(WorkspaceState::Updating), Some(WorkspaceState::Available)];
    follow(api, time, setup, id, &order, |s| *s == Some(WorkspaceState::Available)).await;
    info_of(api, id).await
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// What movers, leave with a grace period and "only what it manages" rely on: tags given at
/// creation and changed after, ADMIN_MAINTENANCE and back, one property change at a time
/// (UPDATING, then AVAILABLE with it; volumes only grow in the documented groups; cooldowns),
/// and migration to a new id that keeps the user, the user volume and the tags.
pub async fn workspace_operations<W: WorkspacesApi, P: Passage>(api: &W, time: &P, setup: &WorkspacesSetup) {
    let user = &setup.users[0];
    let unknown_id = "ws-zz0000000";
    let managed = tags(&[("managed-by", "hr-pipeline")]);
    let mut tagged = item(setup, user);
    tagged.profile.tags = managed.clone();
    let created = create(api, &[tagged]).await;
    assert!(created.failed.is_empty(), "{created:?}");
    let id = created.pending[0].workspace_id.clone();
    let order = [None, Some(WorkspaceState::Pending), Some(WorkspaceState::Available)];
    follow(api, time, setup, &id, &order, |s| *s == Some(WorkspaceState::Available)).await;

    // Bundle and properties are read back; AUTO_STOP without a timeout gets 60 minutes.
    let info = info_of(api, &id).await;
    assert_eq!(info.bundle_id.as_deref(), Some(setup.bundle_id.as_str()));
    let props = info.properties.clone().unwrap_or_else(|| panic!("no properties: {info:?}"));
    assert_eq!((props.running_mode.as_deref(), props.auto_stop_minutes), (Some("AUTO_STOP"), Some(60)));
    let (root, user_gib) = (props.root_volume_gib.unwrap_or_default(), props.user_volume_gib.unwrap_or_default());
    assert!(root >= 80 && user_gib >= 10, "{props:?}");

    // Volumes and a larger compute type wait for the cooldown from launch.
    refused_with(
        "a volume right after launch",
        "InvalidResourceStateException",
        api.modify_properties(&id, &PropertyChange::UserVolume(100)).await,
    );

    // Tags: those given at creation, added, overwritten, deleted (absent keys ignored), limits.
    assert_eq!(ok("DescribeTags", api.tags(&id).await), managed);
    ok("CreateTags", api.create_tags(&id, &tags(&[("owner", "hr")])).await);
    ok("CreateTags overwrites", api.create_tags(&id, &tags(&[("owner", "it")])).await);
    assert_eq!(ok("DescribeTags", api.tags(&id).await), tags(&[("managed-by", "hr-pipeline"), ("owner", "it")]));
    ok("DeleteTags", api.delete_tags(&id, &["owner".to_owned(), "absent".to_owned()]).await);
    assert_eq!(ok("DescribeTags", api.tags(&id).await), managed);
    refused_with(
        "a reserved key",
        "InvalidParameterValuesException",
        api.create_tags(&id, &tags(&[("aws:owner", "x")])).await,
    );
    refused_with(
        "deleting a reserved key",
        "InvalidParameterValuesException",
        api.delete_tags(&id, &["aws:cloudformation:stack-name".to_owned()]).await,
    );
    refused_as_invalid("a 128-character key", api.create_tags(&id, &tags(&[(&"k".repeat(128), "v")])).await);
    refused_as_invalid("a 256-character value", api.create_tags(&id, &tags(&[("k", &"v".repeat(256))])).await);
    let filler: BTreeMap<String, String> = (1..MAX_TAGS).map(|i| (format!("t{i:02}"), "x".to_owned())).collect();
    ok("up to 50 tags", api.create_tags(&id, &filler).await);
    refused_with(
        "a 51st tag",
        "ResourceLimitExceededException",
        api.create_tags(&id, &tags(&[("one-more", "x")])).await,
    );
    let keys: Vec<String> = filler.keys().cloned().collect();
    ok("DeleteTags", api.delete_tags(&id, &keys).await);
    assert_eq!(ok("DescribeTags", api.tags(&id).await), managed);
    refused_with("tags of an unknown id", "ResourceNotFoundException", api.tags(unknown_id).await);
    refused_with(
        "tagging an unknown id",
        "ResourceNotFoundException",
        api.create_tags(unknown_id, &tags(&[("a", "b")])).await,
    );

    // ADMIN_MAINTENANCE: nothing is modified or migrated meanwhile; asking twice is harmless.
    ok("ModifyWorkspaceState", api.set_admin_maintenance(&id, true).await);
    assert_eq!(state_of(api, &id).await, Some(WorkspaceState::AdminMaintenance));
    ok("ModifyWorkspaceState again", api.set_admin_maintenance(&id, true).await);
    let auto_stop = |minutes| PropertyChange::RunningMode { mode: RunningMode::AutoStop, auto_stop_minutes: minutes };
    refused_with(
        "modify in ADMIN_MAINTENANCE",
        "InvalidResourceStateException",
        api.modify_properties(&id, &auto_stop(Some(120))).await,
    );
    refused_with(
        "migrate in ADMIN_MAINTENANCE",
        "InvalidResourceStateException",
        api.migrate(&id, &setup.other_bundle_id).await,
    );
    ok("back to AVAILABLE", api.set_admin_maintenance(&id, false).await);
    assert_eq!(state_of(api, &id).await, Some(WorkspaceState::Available));
    refused_with("an unknown id", "ResourceNotFoundException", api.set_admin_maintenance(unknown_id, true).await);

    // The running mode: 60-minute steps, MANUAL is WorkSpaces Core's, ALWAYS_ON has no timeout.
    refused_with(
        "90 minutes",
        "InvalidParameterValuesException",
        api.modify_properties(&id, &auto_stop(Some(90))).await,
    );
    let manual = PropertyChange::RunningMode { mode: RunningMode::Manual, auto_stop_minutes: None };
    refused_with("MANUAL", "InvalidParameterValuesException", api.modify_properties(&id, &manual).await);
    let always_on = PropertyChange::RunningMode { mode: RunningMode::AlwaysOn, auto_stop_minutes: Some(60) };
    refused_with(
        "ALWAYS_ON with a timeout",
        "InvalidParameterValuesException",
        api.modify_properties(&id, &always_on).await,
    );
    refused_with(
        "an unknown id",
        "ResourceNotFoundException",
        api.modify_properties(unknown_id, &auto_stop(None)).await,
    );
    ok("ModifyWorkspaceProperties", api.modify_properties(&id, &auto_stop(Some(120))).await);
    refused_with(
        "a second change while one runs",
        "OperationInProgressException",
        api.modify_properties(&id, &auto_stop(Some(180))).await,
    );
    let info = updated(api, time, setup, &id).await;
    assert_eq!(info.properties.and_then(|p| p.auto_stop_minutes), Some(120));

    // Volumes: never smaller, only the documented [root, user] groups, once per cooldown.
    time.pass(setup.growth_cooldown_ms).await;
    refused_with(
        "a smaller user volume",
        "InvalidParameterValuesException",
        api.modify_properties(&id, &PropertyChange::UserVolume(user_gib - 1)).await,
    );
    if root == 80 && user_gib < 100 {
        refused_with(
            "a larger root before the user volume is 100 GB",
            "InvalidParameterValuesException",
            api.modify_properties(&id, &PropertyChange::RootVolume(175)).await,
        );
    }
    let grown = user_gib.max(100);
    let grown = if grown == user_gib { grown + 10 } else { grown };
    ok("grow the user volume", api.modify_properties(&id, &PropertyChange::UserVolume(grown)).await);
    let info = updated(api, time, setup, &id).await;
    assert_eq!(info.properties.as_ref().and_then(|p| p.user_volume_gib), Some(grown));
    refused_with(
        "a second growth within the cooldown",
        "InvalidResourceStateException",
        api.modify_properties(&id, &PropertyChange::RootVolume(root.max(175) + 5)).await,
    );

    // Compute: no GPU from a regular bundle, larger once per cooldown, smaller once a month.
    refused_with(
        "a GPU compute type",
        "UnsupportedWorkspaceConfigurationException",
        api.modify_properties(&id, &PropertyChange::ComputeType("GRAPHICS_G4DN".into())).await,
    );
    let compute = info.properties.and_then(|p| p.compute_type).unwrap_or_default();
    assert_eq!(compute, "STANDARD", "the suite starts from a Standard bundle");
    ok("larger", api.modify_properties(&id, &PropertyChange::ComputeType("PERFORMANCE".into())).await);
    let info = updated(api, time, setup, &id).await;
    assert_eq!(info.properties.and_then(|p| p.compute_type).as_deref(), Some("PERFORMANCE"));
    refused_with(
        "larger again within the cooldown",
        "InvalidResourceStateException",
        api.modify_properties(&id, &PropertyChange::ComputeType("POWER".into())).await,
    );
    ok("smaller", api.modify_properties(&id, &PropertyChange::ComputeType("STANDARD".into())).await);
    updated(api, time, setup, &id).await;
    refused_with(
        "smaller again within 30 days",
        "InvalidResourceStateException",
        api.modify_properties(&id, &PropertyChange::ComputeType("VALUE".into())).await,
    );

    // Migration: a new id with the new bundle, the same user, user volume and tags; the source
    // is TERMINATING, then gone once the target is AVAILABLE.
    refused_with("the same bundle", "InvalidParameterValuesException", api.migrate(&id, &setup.bundle_id).await);
    refused_with("an unknown bundle", "ResourceNotFoundException", api.migrate(&id, "wsb-zz0000000").await);
    refused_with("an unknown id", "ResourceNotFoundException", api.migrate(unknown_id, &setup.other_bundle_id).await);
    let target = ok("MigrateWorkspace", api.migrate(&id, &setup.other_bundle_id).await);
    assert_ne!(target, id);
    assert_eq!(state_of(api, &id).await, Some(WorkspaceState::Terminating));
    follow(api, time, setup, &target, &order, |s| *s == Some(WorkspaceState::Available)).await;
    let order_source = [Some(WorkspaceState::Terminating), None];
    follow(api, time, setup, &id, &order_source, Option::is_none).await;
    let moved = info_of(api, &target).await;
    assert_eq!(moved.bundle_id.as_deref(), Some(setup.other_bundle_id.as_str()));
    assert_eq!(moved.user_name.to_lowercase(), user.to_lowercase());
    assert_eq!(moved.properties.and_then(|p| p.user_volume_gib), Some(grown), "the user volume is kept");
    assert_eq!(ok("tags of the target", api.tags(&target).await), managed, "tags are copied");
    assert_eq!(ok("clean up", api.terminate_workspaces(&[target]).await), Vec::new());
}

/// The [`WorkspaceTags`] contract (GetResources by ARN): a WorkSpace's tags as DescribeTags
/// gives them; left out, without an error, a WorkSpace with no tags and one that does not exist;
/// 1 to [`MAX_TAGGED_PER_READ`] ids a call.
pub async fn workspace_tags<W: WorkspacesApi, T: WorkspaceTags, P: Passage>(
    api: &W,
    tags_api: &T,
    time: &P,
    setup: &WorkspacesSetup,
) {
    let managed = tags(&[("managed-by", "hr-pipeline"), ("owner", "it")]);
    let mut tagged = item(setup, &setup.users[0]);
    tagged.profile.tags = managed.clone();
    let created = create(api, &[tagged, item(setup, &setup.users[1])]).await;
    assert!(created.failed.is_empty(), "{created:?}");
    let ids: Vec<String> = created.pending.iter().map(|w| w.workspace_id.clone()).collect();
    for id in &ids {
        let order = [None, Some(WorkspaceState::Pending), Some(WorkspaceState::Available)];
        follow(api, time, setup, id, &order, |s| *s == Some(WorkspaceState::Available)).await;
    }
    let (tagged_id, untagged_id) = (&ids[0], &ids[1]);
    let untagged = ok("DescribeTags", api.tags(untagged_id).await);
    assert!(untagged.is_empty(), "created without tags: {untagged:?}");
    let unknown = "ws-zz0000000".to_owned();
    let asked = vec![tagged_id.clone(), untagged_id.clone(), unknown];
    let found = ok("GetResources", tags_api.tags_of(&asked).await);
    assert_eq!(found, BTreeMap::from([(tagged_id.clone(), managed.clone())]), "only the tagged one, as DescribeTags");
    // A change shows (the simulator and the fake show it at once; AWS may show it late).
    ok("CreateTags", api.create_tags(untagged_id, &tags(&[("owner", "hr")])).await);
    let found = ok("GetResources", tags_api.tags_of(&asked).await);
    assert_eq!(found.get(untagged_id.as_str()), Some(&tags(&[("owner", "hr")])));
    let too_many: Vec<String> = (0..=MAX_TAGGED_PER_READ).map(|i| format!("ws-{i:09}")).collect();
    match tags_api.tags_of(&too_many).await {
        Err(WorkspacesError::Service { retryable: false, .. }) => {}
        other => panic!("{} ids: expected a non-retryable refusal, got {other:?}", too_many.len()),
    }
    ok("TerminateWorkspaces", api.terminate_workspaces(&ids).await);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeWorkspaces;

    /// The seed's AWS Managed Microsoft AD and three of its users.
    fn setup() -> WorkspacesSetup {
        WorkspacesSetup {
            directory_id: "d-9067a1b2c3".into(),
            bundle_id: "wsb-stdwin2022".into(),
            users: ["alee".into(), "bkumar".into(), "cnovak".into()],
            poll_ms: 100,
            max_polls: 100,
            other_bundle_id: "wsb-perfwin2022".into(),
            growth_cooldown_ms: 4_000,
        }
    }

    #[tokio::test]
    async fn the_fake_keeps_the_workspaces_contract() {
        let clock = ManualClock::new(1_000_000);
        let fake = FakeWorkspaces::new(clock.clone());
        let setup = setup();
        workspaces(&fake, &clock, &setup).await;
    }

    #[tokio::test]
    async fn the_fake_keeps_the_contract_of_listing_a_directory() {
        let clock = ManualClock::new(1_000_000);
        let fake = FakeWorkspaces::new(clock.clone());
        directory_listing(&fake, &clock, &setup()).await;
    }

    #[tokio::test]
    async fn the_fake_keeps_the_contract_of_the_operations_on_a_workspace() {
        let clock = ManualClock::new(1_000_000);
        let lifecycle = crate::testing::Lifecycle {
            update_ms: 800,
            migrate_ms: 1_200,
            volume_cooldown_ms: 4_000,
            compute_up_cooldown_ms: 4_000,
            ..Default::default()
        };
        let fake = FakeWorkspaces::new(clock.clone()).with_lifecycle(lifecycle);
        let setup = setup();
        workspace_operations(&fake, &clock, &setup).await;
    }

    #[tokio::test]
    async fn the_fake_keeps_the_contract_of_reading_many_workspaces_tags() {
        let clock = ManualClock::new(1_000_000);
        let fake = FakeWorkspaces::new(clock.clone());
        let setup = setup();
        workspace_tags(&fake, &fake, &clock, &setup).await;
    }
}
