//! An adversary's pass over `model: edit`: chains of edits keep and bill the input's length
//! exactly, a URL's unknown length stays an upper bound all the way down, and the shapes a
//! careless manifest takes (takes as an input, an input too long or too short, wrong types,
//! media the model does not take) are refused or warned about with a message naming the fix.

use shotlist::cost::{Money, PriceBook};
use shotlist::plan::{PlannedShot, Totals};

use super::{planned, rejected};

fn messages(diagnostics: &[shotlist::plan::Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{} | {}\n", d.message, d.help.as_deref().unwrap_or("")))
        .collect()
}

fn shot<'a>(shots: &'a [PlannedShot], id: &str) -> &'a PlannedShot {
    shots.iter().find(|s| s.id == id).expect("planned")
}

#[test]
fn an_edit_of_an_edit_of_an_edit_keeps_the_length_and_bills_it_exactly() {
    let p = planned(
        "version: 1\nshots:\n\
         \x20 - { id: base, model: t2v, prompt: a, duration: 7, resolution: 1080P }\n\
         \x20 - { id: e1, model: edit, prompt: b, resolution: 1080P, media: [{ type: video, shot: base }] }\n\
         \x20 - { id: e2, model: edit, prompt: c, resolution: 1080P, media: [{ type: video, shot: e1 }] }\n\
         \x20 - { id: e3, model: edit, prompt: d, resolution: 1080P, duration: 0, media: [{ type: video, shot: e2 }] }\n",
    );
    let book = PriceBook::default();
    let shots = &p.plan.shots;
    for id in ["e1", "e2", "e3"] {
        let s = shot(shots, id);
        assert_eq!((s.duration, s.output_seconds()), (0, 7), "{id}");
        assert_eq!(
            s.input_video.map(|i| (i.seconds, i.upper_bound)),
            Some((7, false))
        );
        assert_eq!(shotlist::cost::billed_seconds(s), 14);
        assert_eq!(book.shot(s), Some(Money::parse("2.1").unwrap()), "{id}");
    }
    let totals = Totals::of(&p.plan, &book);
    assert_eq!(totals.cost.total, Money::parse("7.35").unwrap());
    assert!(!totals.cost.upper_bound);
    assert_eq!(totals.seconds, 28);
}

#[test]
fn a_url_input_stays_an_upper_bound_down_the_chain_and_a_cut_output_does_not() {
    let p = planned(
        "version: 1\nshots:\n\
         \x20 - { id: u, model: edit, prompt: a, media: [{ type: video, url: \"https://example.com/a.mp4\" }] }\n\
         \x20 - { id: keep, model: edit, prompt: b, media: [{ type: video, shot: u }] }\n\
         \x20 - { id: cut, model: edit, prompt: c, duration: 3, media: [{ type: video, shot: u }] }\n\
         \x20 - { id: after, model: edit, prompt: d, media: [{ type: video, shot: cut }] }\n",
    );
    let shots = &p.plan.shots;
    let bounds = |id| {
        let s = shot(shots, id);
        (s.output_seconds(), s.output_upper_bound(), s.upper_bound())
    };
    assert_eq!(bounds("u"), (10, true, true));
    assert_eq!(bounds("keep"), (10, true, true));
    assert_eq!(bounds("cut"), (3, false, true));
    // `cut` makes 3 s whatever `u` lasts: what follows it is exact.
    assert_eq!(bounds("after"), (3, false, false));
    let book = PriceBook::default();
    let costs: Vec<String> = ["u", "keep", "cut", "after"]
        .iter()
        .map(|id| book.shot(shot(shots, id)).unwrap().exact())
        .collect();
    assert_eq!(costs, ["2.00", "2.00", "1.30", "0.60"]);
}

#[test]
fn one_t2v_feeding_fifty_edits_bills_each_its_input_once() {
    let mut m = String::from(
        "version: 1\nseed: 1\nshots:\n  - { id: base, model: t2v, prompt: a, duration: 5 }\n",
    );
    for i in 0..50 {
        m.push_str(&format!(
            "  - {{ id: e{i}, model: edit, prompt: p{i}, media: [{{ type: video, shot: base }}] }}\n"
        ));
    }
    let p = planned(&m);
    let totals = Totals::of(&p.plan, &PriceBook::default());
    let edit = &totals.by_model[1];
    assert_eq!(
        (edit.shots, edit.seconds, edit.input_seconds),
        (50, 250, 250)
    );
    assert_eq!(totals.cost.total, Money::parse("50.5").unwrap());
    assert!(p.plan.shots[1..].iter().all(|s| s.depends_on == [0]));
}

#[test]
fn a_shot_naming_a_shot_with_takes_is_told_to_name_one_take() {
    let r = rejected(
        "version: 1\nseed: 1\nshots:\n\
         \x20 - { id: tk, model: t2v, prompt: a, takes: 3 }\n\
         \x20 - { id: etk, model: edit, prompt: b, media: [{ type: video, shot: tk }] }\n",
        &[],
    );
    let m = messages(&r.diagnostics);
    assert!(m.contains("no shot has the id `tk`"), "{m}");
    assert!(
        m.contains("`tk` has takes, so it is 3 shots (`tk-take1` … `tk-take3`): name one, e.g. `shot: tk-take1`"),
        "{m}"
    );
    assert!(!m.contains("did you mean"), "{m}");
    let p = planned(
        "version: 1\nseed: 1\nshots:\n\
         \x20 - { id: tk, model: t2v, prompt: a, takes: 3, duration: 4 }\n\
         \x20 - { id: etk, model: edit, prompt: b, media: [{ type: video, shot: tk-take2 }] }\n",
    );
    assert_eq!(shot(&p.plan.shots, "etk").output_seconds(), 4);
}

#[test]
fn an_input_too_long_is_refused_and_an_output_longer_than_its_input_is_a_warning() {
    let r = rejected(
        "version: 1\nshots:\n\
         \x20 - { id: long, model: t2v, prompt: a, duration: 12 }\n\
         \x20 - { id: e, model: edit, prompt: b, media: [{ type: video, shot: long }] }\n",
        &[],
    );
    let m = messages(&r.diagnostics);
    assert!(
        m.contains(
            "shot `long` lasts 12 s, but video takes 2-10 s | shorten `long` to at most 10 s"
        ),
        "{m}"
    );
    // An i2v continuation lasts its own duration; an edit of it keeps that.
    let p = planned(
        "version: 1\nshots:\n\
         \x20 - { id: short, model: t2v, prompt: a, duration: 3 }\n\
         \x20 - { id: cont, model: i2v, prompt: b, duration: 6, media: [{ type: first_clip, shot: short }] }\n\
         \x20 - { id: e, model: edit, prompt: c, media: [{ type: video, shot: cont }] }\n\
         \x20 - { id: cut, model: edit, prompt: d, duration: 8, media: [{ type: video, shot: short }] }\n",
    );
    assert_eq!(shot(&p.plan.shots, "e").output_seconds(), 6);
    let m = messages(&p.warnings);
    assert!(
        m.contains("duration: 8 s, but its input `short` lasts 3 s"),
        "{m}"
    );
    assert_eq!(p.warnings.len(), 1, "{m}");
}

#[test]
fn careless_edit_fields_are_refused_naming_the_fix() {
    let r = rejected(
        "version: 1\nshots:\n\
         \x20 - { id: base, model: t2v, prompt: a }\n\
         \x20 - { id: yes, model: edit, prompt: b, audio_setting: yes, media: [{ type: video, shot: base }] }\n\
         \x20 - { id: one, model: edit, prompt: b, duration: 1, media: [{ type: video, shot: base }] }\n\
         \x20 - { id: twice, model: edit, prompt: b, media: [{ type: video, shot: base }, { type: video, url: \"https://x/v.mp4\" }] }\n\
         \x20 - { id: none, model: edit, prompt: b, media: [{ type: reference_image, url: \"https://x/1.png\" }] }\n\
         \x20 - { id: five, model: edit, prompt: b, media: [{ type: video, shot: base }, { type: reference_image, url: \"https://x/1.png\" }, { type: reference_image, url: \"https://x/2.png\" }, { type: reference_image, url: \"https://x/3.png\" }, { type: reference_image, url: \"https://x/4.png\" }, { type: reference_image, url: \"https://x/5.png\" }] }\n\
         \x20 - { id: voice, model: edit, prompt: b, media: [{ type: video, shot: base, reference_voice: \"https://x/a.mp3\" }] }\n\
         \x20 - { id: sound, model: edit, prompt: b, audio_url: \"https://x/a.mp3\", media: [{ type: video, shot: base }] }\n\
         \x20 - { id: tv, model: t2v, prompt: b, media: [{ type: video, shot: base }] }\n\
         \x20 - { id: rv, model: r2v, prompt: b, media: [{ type: video, shot: base }] }\n\
         \x20 - { id: onr2v, model: r2v, prompt: b, audio_setting: origin, media: [{ type: reference_image, url: \"https://x/1.png\" }] }\n\
         \x20 - { id: refs, model: edit, prompt: \"视频2 in the style of 图1\", media: [{ type: video, shot: base }] }\n",
        &[],
    );
    let m = messages(&r.diagnostics);
    for (shot, words) in [
        ("yes", "audio_setting: `yes` is not `auto` or `origin`"),
        (
            "one",
            "duration: 1 s is outside 2-10 s for edit | or 0 to keep",
        ),
        ("twice", "edit takes exactly one `video`, not 2"),
        ("none", "edit takes exactly one `video`, not 0"),
        (
            "five",
            "5 reference_image items, more than the 4 edit accepts",
        ),
        ("voice", "reference_voice"),
        ("sound", "audio_url"),
        ("tv", "t2v takes no media"),
        ("rv", "`video` is an edit type, not r2v"),
        ("onr2v", "audio_setting is for edit only"),
        (
            "refs",
            "prompt names 视频/Video 2, but the shot has 1 video item(s)",
        ),
    ] {
        let found = r.diagnostics.iter().any(|d| {
            d.shot.as_deref() == Some(shot)
                && format!("{} | {}", d.message, d.help.as_deref().unwrap_or("")).contains(words)
        });
        assert!(found, "`{shot}` should say {words:?}:\n{m}");
    }
    let r = rejected(
        "version: 1\nshots:\n  - { id: e, model: edit, prompt: b, duration: 0.0, media: [{ type: video, url: \"https://x/v.mp4\" }] }\n",
        &[],
    );
    assert!(messages(&r.diagnostics).contains("expected a whole number"));
}

#[test]
fn audio_setting_in_defaults_reaches_only_the_edits_of_a_mixed_manifest() {
    let p = planned(
        "version: 1\ndefaults: { audio_setting: origin, prompt_extend: false }\nshots:\n\
         \x20 - { id: base, model: t2v, prompt: a }\n\
         \x20 - { id: cont, model: i2v, prompt: b, media: [{ type: first_clip, shot: base }] }\n\
         \x20 - { id: e, model: edit, prompt: c, media: [{ type: video, shot: cont }] }\n",
    );
    let sent: Vec<Option<String>> = p
        .plan
        .shots
        .iter()
        .map(|s| {
            s.body.value()["metadata"]["parameters"]["audio_setting"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(sent, [None, None, Some("origin".into())]);
}
