"""…/checkpoints/ (newest first along the head's branch, cursor pages) and one checkpoint."""

from __future__ import annotations

from tests.api.conftest import assert_error, invoke, session_url


def history(api, session_id: str, query: str = "") -> dict:
    return api.get(session_url("chat", session_id, "checkpoints") + query).json()


def run_turns(api, session_id: str, turns: int) -> None:
    for n in range(turns):
        invoke(api, "chat", session_id, {"input": {"messages": [f"m{n}"]}})


def test_checkpoints_newest_first_with_their_metadata(api):
    run_turns(api, "s", 3)
    page = history(api, "s", "?limit=5")
    results = page["results"]
    assert len(results) == 5 and page["previous"] is None and page["next"]
    newest = results[0]
    assert set(newest) == {"checkpoint_id", "parent_id", "run_id", "node", "step", "created_at",
                           "updated_fields", "next", "interrupts"}
    assert newest["node"] == "reply" and newest["updated_fields"] == ["messages", "turns"]
    assert results[1]["node"] == "__start__" and results[1]["next"] == ["reply"]
    assert [r["checkpoint_id"] for r in results[1:]] == [r["parent_id"] for r in results[:-1]]
    assert newest["created_at"] >= results[-1]["created_at"]


def test_pages_walk_the_whole_branch_and_back(api):
    run_turns(api, "s", 4)  # 8 checkpoints
    everything = [c["checkpoint_id"] for c in history(api, "s", "?limit=100")["results"]]
    assert len(everything) == 8
    seen, pages, url = [], [], session_url("chat", "s", "checkpoints") + "?limit=3"
    while url:
        page = api.get(url).json()
        pages.append(page)
        seen += [c["checkpoint_id"] for c in page["results"]]
        url = page["next"]
    assert seen == everything and [len(p["results"]) for p in pages] == [3, 3, 2]
    back = api.get(pages[2]["previous"]).json()
    assert [c["checkpoint_id"] for c in back["results"]] == everything[3:6]
    first = api.get(back["previous"]).json()
    assert [c["checkpoint_id"] for c in first["results"]] == everything[:3] and first["previous"] is None


def test_a_fork_lists_its_own_branch(api):
    first = invoke(api, "chat", "s", {"input": {"messages": ["a"]}}).json()
    invoke(api, "chat", "s", {"input": {"messages": ["b"]}})
    invoke(api, "chat", "s", {"input": {"messages": ["c"]}, "checkpoint_id": first["checkpoint_id"]})
    branch = history(api, "s", "?limit=100")["results"]
    assert len(branch) == 4 and branch[2]["checkpoint_id"] == first["checkpoint_id"]


def test_bad_cursors_are_400(api):
    run_turns(api, "s", 1)
    assert assert_error(api.get(session_url("chat", "s", "checkpoints") + "?before=zzz"), 400,
                        "checkpoint_not_found")["fields"] == {"before": ["no checkpoint 'zzz' in session 's'"]}
    assert "after" in assert_error(api.get(session_url("chat", "s", "checkpoints") + "?after=zzz"), 400,
                                   "checkpoint_not_found")["fields"]
    data = assert_error(api.get(session_url("chat", "s", "checkpoints") + "?after=a&before=b"), 400, "invalid")
    assert set(data["fields"]) == {"before", "after"}


def test_one_checkpoint_with_its_state_and_changes(api):
    run_turns(api, "s", 2)
    newest = history(api, "s", "?limit=1")["results"][0]
    response = api.get(session_url("chat", "s", f"checkpoints/{newest['checkpoint_id']}"))
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in newest} == newest
    assert data["state"] == {"messages": ["m0", "echo: m0", "m1", "echo: m1"], "turns": 2}
    assert data["changes"] == {"messages": {"op": "extend", "value": ["echo: m1"]}, "turns": {"op": "set", "value": 2}}


def test_an_unknown_checkpoint_is_404(api):
    run_turns(api, "s", 1)
    data = assert_error(api.get(session_url("chat", "s", "checkpoints/zzz")), 404, "checkpoint_not_found")
    assert "'zzz'" in data["detail"]


def test_an_empty_session_has_no_checkpoints(api):
    api.post("/api/flows/chat/sessions/", {"session_id": "e"}, format="json")
    assert history(api, "e") == {"next": None, "previous": None, "results": []}


def branches(api, session_id: str):
    return api.get(session_url("chat", session_id, "branches"))


def test_branches_list_where_the_session_forked_and_each_branchs_tip(api):
    first = invoke(api, "chat", "s", {"input": {"messages": ["a"]}}).json()
    assert branches(api, "s").json() == {"results": []}  # one line of history: no fork
    old_tip = invoke(api, "chat", "s", {"input": {"messages": ["b"]}}).json()["checkpoint_id"]
    new_tip = invoke(api, "chat", "s", {"input": {"messages": ["c"]}, "checkpoint_id": first["checkpoint_id"]}).json()[
        "checkpoint_id"]
    [fork] = branches(api, "s").json()["results"]
    assert fork["checkpoint_id"] == first["checkpoint_id"]
    old, new = fork["children"]  # oldest first
    assert (old["tip"], new["tip"]) == (old_tip, new_tip)
    assert old["node"] == new["node"] == "__start__" and old["updated_fields"] == ["messages"]
    assert old["created_at"] <= new["created_at"]
    # a branch's first checkpoint is the parent of the rest of it
    on_new = history(api, "s", "?limit=100")["results"]
    assert on_new[-3]["checkpoint_id"] == new["checkpoint_id"] and on_new[-2]["checkpoint_id"] == fork["checkpoint_id"]


def test_branches_of_another_users_session_are_404(api, bobs):
    invoke(api, "chat", "s", {"input": {"messages": ["a"]}})
    assert_error(branches(bobs, "s"), 404, "session_not_found")


def test_forks_come_oldest_parent_first_whatever_branch_they_are_on(api):
    def say(text, at=None):
        body = {"input": {"messages": [text]}} | ({"checkpoint_id": at} if at else {})
        return invoke(api, "chat", "s", body).json()["checkpoint_id"]

    r1 = say("a")
    r2 = say("b")                  # branch 1 ends at r2, for now
    r2_other = say("b2", at=r1)    # branch 2: r1 forks
    say("d")                       # branch 2 goes on ...
    say("d2", at=r2_other)         # ... and forks at r2_other
    say("c", at=r2)                # only now does the older r2 get children
    say("c2", at=r2)
    assert [fork["checkpoint_id"] for fork in branches(api, "s").json()["results"]] == [r1, r2, r2_other]
