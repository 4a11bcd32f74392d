-- Searching cases by words of the subject. SQLite's LIKE '%word%' can use no index, so a rare
-- word read every case (240 ms with 100,000). A trigram index finds any substring of three
-- characters or more, ignoring case; triggers keep it in step with the cases.
CREATE VIRTUAL TABLE case_subjects USING fts5(subject, content = 'cases', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO case_subjects (case_subjects) VALUES ('rebuild');

CREATE TRIGGER case_subjects_insert AFTER INSERT ON cases BEGIN
    INSERT INTO case_subjects (rowid, subject) VALUES (new.id, new.subject);
END;

CREATE TRIGGER case_subjects_delete AFTER DELETE ON cases BEGIN
    INSERT INTO case_subjects (case_subjects, rowid, subject) VALUES ('delete', old.id, old.subject);
END;

CREATE TRIGGER case_subjects_update AFTER UPDATE OF subject ON cases BEGIN
    INSERT INTO case_subjects (case_subjects, rowid, subject) VALUES ('delete', old.id, old.subject);
    INSERT INTO case_subjects (rowid, subject) VALUES (new.id, new.subject);
END;
