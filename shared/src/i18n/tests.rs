use super::*;

fn shipped() -> Catalogs {
    Catalogs::load(TEMPLATE, EMBEDDED).unwrap()
}

#[test]
fn every_message_is_translated_in_every_shipped_language_with_the_same_placeholders() {
    let pot = po::parse(TEMPLATE).unwrap();
    assert!(pot.entries.len() > 100, "{}", pot.entries.len());
    assert!(!EMBEDDED.is_empty(), "at least one language besides English ships");
    for (lang, src) in EMBEDDED {
        let file = po::parse(src).unwrap();
        assert_eq!(file.header("Language"), Some(*lang), "{lang}.po names its language");
        let rule = plural::Rule::parse(file.header("Plural-Forms").unwrap()).unwrap();
        for msg in &pot.entries {
            let found = file.entries.iter().find(|e| e.msgid == msg.msgid && e.context == msg.context);
            let Some(t) = found else { panic!("{lang}.po lacks {:?} (gatehouse.pot line {})", msg.msgid, msg.line) };
            assert!(!t.fuzzy, "{lang}.po line {}: fuzzy", t.line);
            assert_eq!(t.msgid_plural, msg.msgid_plural, "{lang}.po line {}", t.line);
            let forms = if msg.msgid_plural.is_some() { rule.nplurals } else { 1 };
            assert_eq!(t.msgstr.len(), forms, "{lang}.po line {}", t.line);
            let want = arg_names(&msg.msgid).unwrap();
            for s in &t.msgstr {
                assert!(!s.trim().is_empty(), "{lang}.po line {}: untranslated", t.line);
                assert_eq!(arg_names(s).unwrap(), want, "{lang}.po line {}: placeholders differ", t.line);
            }
        }
    }
}

#[test]
fn plain_and_dynamic_messages_are_translated_and_unknown_ones_kept() {
    let c = shipped();
    assert_eq!(c.translate("fr", "This field is required."), "Ce champ est obligatoire.");
    assert_eq!(
        c.translate("fr", "Ensure this field has no more than 150 characters."),
        "Assurez-vous que ce champ ne comporte pas plus de 150 caractères."
    );
    assert_eq!(
        c.translate("fr", "Invalid permission \"shop.x\" - object does not exist."),
        "Permission « shop.x » invalide - l’objet n’existe pas."
    );
    // An argument holding the text that follows it: the last literal is matched from the end.
    assert_eq!(
        c.translate("fr", "Invalid group \"a\" - object does not exist.\" - object does not exist."),
        "Groupe « a\" - object does not exist. » invalide - l’objet n’existe pas."
    );
    // `%(n)d` takes digits only.
    assert_eq!(
        c.translate("fr", "Ensure this field has no more than many characters."),
        "Ensure this field has no more than many characters."
    );
    assert!(!c.knows("Ensure this field has no more than many characters."));
    assert_eq!(c.translate("fr", "Something else."), "Something else.");
    assert_eq!(c.translate("en", "This field is required."), "This field is required.");
    assert_eq!(c.translate("xx", "This field is required."), "This field is required.");
}

#[test]
fn plural_forms_follow_the_languages_rule() {
    let c = shipped();
    // French: n > 1 is plural, 0 and 1 singular.
    assert_eq!(
        c.translate("fr", "This password is too short. It must contain at least 1 character."),
        "Ce mot de passe est trop court. Il doit contenir au minimum 1 caractère."
    );
    assert_eq!(
        c.translate("fr", "This password is too short. It must contain at least 12 characters."),
        "Ce mot de passe est trop court. Il doit contenir au minimum 12 caractères."
    );
    let rule = |h: &str| plural::Rule::parse(h).unwrap();
    let polish = rule("nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);");
    assert_eq!([1, 2, 5, 12, 22, 25].map(|n| polish.form(n)), [0, 1, 2, 2, 1, 2]);
    let fr = rule("nplurals=2; plural=(n > 1);");
    assert_eq!([0, 1, 2].map(|n| fr.form(n)), [0, 0, 1]);
    assert_eq!(rule("nplurals=1; plural=0;").form(7), 0);
    assert_eq!(rule("nplurals=2; plural=!(n == 1);").form(2), 1);
    for bad in ["nplurals=2; plural=(n > 1", "nplurals=2; plural=n+1;", "plural=n;", "nplurals=2; plural=n/0;"] {
        assert!(plural::Rule::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_broken_catalog_is_refused_with_its_line() {
    let bad = |src: &str| Catalogs::load(TEMPLATE, &[("de", src)]).unwrap_err();
    assert!(bad("msgid \"x\"\nmsgstr \"y\n").starts_with("de.po line 2"), "{}", bad("msgid \"x\"\nmsgstr \"y\n"));
    assert!(bad("\n\nmsgid \"x\"\n\"").starts_with("de.po line 4"));
    assert!(bad("msgid \"x\"\nmsgid \"y\"\nmsgstr \"\"").contains("line 1"));
    assert!(bad("msgstr \"y\"").contains("line 1"));
    let stray = bad("msgid \"This field is required.\"\nmsgstr \"Pflicht %(feld)s\"\n");
    assert!(stray.contains("line 1") && stray.contains("feld"), "{stray}");
    let dup = bad("msgid \"a\"\nmsgstr \"b\"\n\nmsgid \"a\"\nmsgstr \"c\"\n");
    assert!(dup.starts_with("de.po line 4"), "{dup}");
    // Untranslated and fuzzy entries are left out (English shows), not refused.
    let c = Catalogs::load(
        TEMPLATE,
        &[("de", "msgid \"Not found.\"\nmsgstr \"\"\n\n#, fuzzy\nmsgid \"Invalid cursor.\"\nmsgstr \"Kursor\"\n")],
    )
    .unwrap();
    assert_eq!(c.translate("de", "Not found."), "Not found.");
    assert_eq!(c.translate("de", "Invalid cursor."), "Invalid cursor.");
}

#[test]
fn accept_language_is_read_as_django_reads_it() {
    let c = Catalogs::load(TEMPLATE, &[("fr", ""), ("pt-br", "")]).unwrap();
    let pick = |h: &str| c.negotiate(h);
    assert_eq!(pick("fr"), Some("fr"));
    assert_eq!(pick("fr-CA,en;q=0.5"), Some("fr"));
    assert_eq!(pick("de, fr;q=0.8, en;q=0.9"), Some("en"));
    assert_eq!(pick("de, fr;q=0.9, en;q=0.8"), Some("fr"));
    assert_eq!(pick("pt"), Some("pt-br"));
    assert_eq!(pick("pt_BR"), Some("pt-br"));
    assert_eq!(pick("fr;q=0, en"), Some("en"));
    assert_eq!(pick("fr;q=0"), None);
    assert_eq!(pick("*"), None);
    assert_eq!(pick("de"), None);
    assert_eq!(pick(""), None);
    assert_eq!(pick("fr;q=2, en;q=abc, de"), None, "malformed qualities count as 0");
    assert_eq!(pick("en;q=0.1, fr;q=0.100"), Some("en"), "ties keep the order given");
    assert_eq!(pick("../../etc, fr"), Some("fr"));
}

#[test]
fn error_bodies_translate_messages_never_codes_or_field_names() {
    let _ = Catalogs::get();
    let mut body = serde_json::json!({
        "detail": "Not found.",
        "code": "Not found.",
        "password": ["This password is too common.", "This password is entirely numeric."],
        "groups": {"0": ["Expected a list of items."]},
        "non_field_errors": ["The two password fields didn't match."],
    });
    translate_body(&mut body, "fr");
    assert_eq!(body["detail"], "Pas trouvé.");
    assert_eq!(body["code"], "Not found.");
    assert_eq!(body["password"][1], "Ce mot de passe est entièrement numérique.");
    assert_eq!(body["groups"]["0"][0], "Une liste d’éléments est attendue.");
    assert_eq!(body["non_field_errors"][0], "Les deux mots de passe ne correspondent pas.");
}

#[test]
fn the_unparsed_language_list_is_the_parsed_catalogs_own() {
    // languages(), known() and negotiate() answer from the catalogs' names, without parsing them
    // (a cold start's settings check and every Accept-Language): they must agree with the parse.
    let parsed = Catalogs::get();
    assert_eq!(languages(), parsed.languages().as_slice());
    for lang in ["fr", "FR", "fr_CA", "en", "xx", " fr "] {
        assert_eq!(known(lang), parsed.known(lang), "{lang}");
    }
    for header in ["fr-CA,fr;q=0.9,en;q=0.8", "de, *", "en-GB;q=0.2, fr;q=0.3", "", "pt"] {
        assert_eq!(negotiate(header), parsed.negotiate(header), "{header}");
    }
}
