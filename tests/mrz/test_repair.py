"""OCR repair: by field type, and by check digit only when the repair is unique."""

from __future__ import annotations

import datetime as dt

from gate.mrz import build_td3, parse_mrz
from gate.reasons import ReasonCode as R

TODAY = dt.date(2026, 11, 25)
L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def test_digits_in_letter_fields_and_letters_in_digit_fields() -> None:
    l1 = L1.replace("UTO", "UT0").replace("ANNA", "ANN4")
    l2 = L2.replace("7408122", "74O8I22").replace("UTO7", "UT07")
    rec = parse_mrz([l1, l2], today=TODAY, repair=True)
    assert rec.valid, rec.reasons
    assert (1, 15, "O", "0") in rec.repaired and (1, 17, "I", "1") in rec.repaired
    assert (0, 4, "0", "O") in rec.repaired
    assert rec.given_names == "ANNA MARIA"


def test_filler_read_as_k_in_names() -> None:
    l1 = L1[:-6] + "<K<<K<"  # fillers from column 30
    rec = parse_mrz([l1, L2], today=TODAY, repair=True)
    assert rec.valid and rec.given_names == "ANNA MARIA"
    assert (0, 39, "K", "<") in rec.repaired


def test_document_number_repaired_through_its_check_digit() -> None:
    # only the 'B' (column 3) of this number is ambiguous: the one swap that fits
    good = build_td3(
        surname="ERIKSSON",
        given_names="ANNA",
        document_number="HM78439W7",
        nationality="UTO",
        date_of_birth="740812",
        sex="F",
        date_of_expiry="320415",
    )
    l2 = "HM7B439W7" + good[1][9:]
    rec = parse_mrz([good[0], l2], today=TODAY, repair=True)
    assert rec.valid and rec.document_number == "HM78439W7"
    assert rec.repaired == ((1, 3, "B", "8"),)


def test_without_repair_the_same_lines_are_invalid() -> None:
    l2 = "L8B8902C3" + L2[9:]
    rec = parse_mrz([L1, l2], today=TODAY)
    assert not rec.valid and R.DOC_CHECK_NUMBER in rec.reasons and rec.repaired == ()


def test_ambiguous_repair_is_not_applied() -> None:
    # every digit is swappable: many combinations satisfy one mod-10 digit, so no repair
    number = "OIBSZGOIB"
    from gate.mrz import check_digit

    wrong = str((int(check_digit(number)) + 1) % 10)
    l2 = number + wrong + L2[10:]
    rec = parse_mrz([L1, l2], today=TODAY, repair=True)
    assert R.DOC_CHECK_NUMBER in rec.reasons
    assert not any(r[0] == 1 and r[1] < 9 for r in rec.repaired)


def test_repair_line_alone_guesses_its_place() -> None:
    from gate.mrz.repair import repair_line

    fixed, log = repair_line(L2.replace("7408122", "74O8I22"))
    assert fixed == L2 and (0, 15, "O", "0") in log
    name_line = "ERIKSS0N<<ANNA<MARIA<<<<<<<<<"  # TD1 line 3 (30), a zero in a name
    assert repair_line(name_line + "<")[0] == "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"
    assert repair_line("NOT AN MRZ LINE") == ("NOT AN MRZ LINE", [])


def _probs(text: str, unsure: dict[int, dict[str, float]]) -> list[list[float]]:
    from gate.mrz.checkdigit import ALPHABET

    rows = []
    for i, c in enumerate(text):
        row = [0.0] * len(ALPHABET)
        for ch, p in unsure.get(i, {c: 1.0}).items():
            row[ALPHABET.index(ch)] = p
        rows.append(row)
    return rows


def test_repair_line_leans_to_digits_in_mixed_fields_only_with_odds() -> None:
    from gate.mrz.repair import repair_line

    read = "L898902C36UTO7408122F1204159ZE184226B<<<<<10".replace("L898902C3", "L8989O2C3")
    # an O the recogniser thought might well be a zero: a digit, in the document number
    fixed, log = repair_line(read, _probs(read, {5: {"O": 0.7, "0": 0.3}}))
    assert fixed == L2 and (0, 5, "O", "0") in log
    # a sure O stays; the letters of the number (L, C) and the nationality are untouched
    sure = _probs(read, {5: {"O": 0.95, "0": 0.05}, 0: {"L": 0.9, "1": 0.1}})
    assert repair_line(read, sure)[0] == read
    # rows that do not match the text are ignored
    assert repair_line(read, [])[0] == read


def test_repair_line_second_choice_only_when_it_alone_satisfies_the_checks() -> None:
    from gate.mrz.repair import repair_line

    wrong = L2[:14] + "7" + L2[15:]  # birth 740812 read as 770812: its check digit fails
    fixed, log = repair_line(wrong, _probs(wrong, {14: {"7": 0.55, "4": 0.45}}))
    assert fixed == L2 and (0, 14, "7", "4") in log
    # without a credible runner-up nothing is guessed
    assert repair_line(wrong, _probs(wrong, {14: {"7": 0.95, "4": 0.05}}))[0] == wrong
    # a runner-up that breaks another check is no candidate: still the one repair
    two = _probs(wrong, {14: {"7": 0.55, "4": 0.45}, 2: {"8": 0.5, "9": 0.5}})
    assert repair_line(wrong, two)[0] == L2


def test_repair_line_counts_letters_in_digit_positions_half() -> None:
    from gate.mrz.repair import repair_line

    # TD1 line 2 with five zeros read as O or D: 15 of 19 typed positions are digits or
    # letters, so the line is still recognised and its dates repaired
    truth = "7001017M0503084AUS20100101<<<8"
    read = "7001O17MO5D3O84AUS2O1OO101<<<8"
    assert repair_line(read)[0].startswith("7001017M0503084AUS")
    assert repair_line(truth)[0] == truth


def test_repair_line_leaves_a_line_with_digit_data_in_letter_positions_alone() -> None:
    from gate.mrz.repair import repair_line

    # a national card's first line: name then digits where TD2's name field would be
    line = "IDFRAPETE<<<<<<<<<<<<<<<<<<<<<952042"
    assert repair_line(line) == (line, [])


def test_repair_line_learns_the_typeface_from_proven_digits() -> None:
    from gate.mrz.repair import repair_line

    # every zero of this typeface reads as O with odds 23:2 (too sure for a second
    # choice); the dates prove that is how its zeros look
    read = L2.replace("0", "O")
    zeros = {i: {"O": 0.92, "0": 0.08} for i, c in enumerate(L2) if c == "0"}
    assert repair_line(read, _probs(read, zeros))[0] == L2
    # without the proven zeros the same odds would keep the letter
    assert repair_line(read)[0][:9] == "L8989O2C3"


def test_repair_line_puts_the_likeliest_digit_where_the_table_has_none() -> None:
    from gate.mrz.repair import repair_line

    read = L2[:-1] + "W"  # composite digit read as W: no letter-to-digit entry for it
    fixed, log = repair_line(read, _probs(read, {43: {"W": 0.6, "0": 0.3, "8": 0.1}}))
    assert fixed == L2 and (0, 43, "W", "0") in log
    assert repair_line(read)[0] == read  # without probabilities it stays


def _green_card(code: str) -> list[str]:
    from gate.mrz import build_td1

    return list(
        build_td1(
            document_code=code,
            issuing_state="USA",
            document_number="SRC000000",
            date_of_birth="740812",
            sex="F",
            date_of_expiry="320415",
            nationality="MEX",
            surname="SPECIMEN",
            given_names="TEST",
        )
    )


def test_td1_second_code_character_may_be_a_digit() -> None:
    # US permanent-resident cards carry C1: ICAO 9303-5 leaves the 2nd character of a
    # TD1/TD2 code to the issuer, so a digit there is data, not an OCR slip
    rec = parse_mrz(_green_card("C1"), today=TODAY, repair=True)
    assert rec.valid, rec.reasons
    assert rec.document_code == "C1" and rec.repaired == ()


def test_code_letters_still_repaired_where_the_layout_wants_a_letter() -> None:
    # the 1st character of any code and the 2nd of a passport (9303-4: P + a letter)
    lines = _green_card("C1")
    rec = parse_mrz(["1" + lines[0][1:], *lines[1:]], today=TODAY, repair=True)
    assert rec.valid and rec.document_code == "I1" and rec.repaired == ((0, 0, "1", "I"),)
    rec = parse_mrz(["P0" + L1[2:], L2], today=TODAY, repair=True)
    assert rec.document_code == "PO" and (0, 1, "0", "O") in rec.repaired


def test_line_alone_keeps_a_digit_in_the_td1_code() -> None:
    from gate.mrz.repair import repair_line

    line = _green_card("C1")[0]
    fixed, log = repair_line(line)
    assert fixed == line and log == []


def test_zero_read_as_u_in_digit_fields() -> None:
    # U weighs 30, 0 mod 10 like 0: no check digit catches it, the field type must
    l2 = L2.replace("7408122", "74U8122").replace("1204159", "12U4159")
    rec = parse_mrz([L1, l2], today=TODAY, repair=True)
    assert rec.valid, rec.reasons
    assert (1, 15, "U", "0") in rec.repaired and (1, 23, "U", "0") in rec.repaired


def test_page_number_leans_to_the_digit_its_check_cannot_tell_from_a_letter() -> None:
    from gate.mrz.checkdigit import ALPHABET
    from gate.mrz.layout import TD3
    from gate.mrz.repair import lean_to_digits

    def rows(line: str, doubt: dict[int, dict[str, float]]) -> list[list[float]]:
        out = []
        for i, c in enumerate(line):
            row = [0.001] * len(ALPHABET)
            for ch, p in doubt.get(i, {c: 0.99}).items():
                row[ALPHABET.index(ch)] = p
            out.append(row)
        return out

    read = L2[:5] + "U" + L2[6:]  # L8989[0]2C3: the 0 read as U, valid either way
    assert parse_mrz([L1, read], today=TODAY).valid
    probs = [rows(L1, {}), rows(read, {5: {"U": 0.7, "0": 0.25}})]
    lines, log = lean_to_digits([L1, read], probs, TD3)
    assert lines == [L1, L2] and log == [(1, 5, "U", "0")]
    # a letter the recogniser is sure of stays: the issuer may print a U there
    probs = [rows(L1, {}), rows(read, {5: {"U": 0.9, "0": 0.05}})]
    assert lean_to_digits([L1, read], probs, TD3) == ([L1, read], [])
    # O against 0 differ in value (24 and 0): the check digit decides, not the prior
    other = L2[:5] + "O" + L2[6:]
    probs = [rows(L1, {}), rows(other, {5: {"O": 0.6, "0": 0.4}})]
    assert lean_to_digits([L1, other], probs, TD3)[1] == []


def test_sex_read_as_another_letter_becomes_the_likeliest_sex_code() -> None:
    # a real Dutch card's crop: F read as A (blur). Only F, M, X and < may stand there
    from gate.mrz.repair import repair_line

    truth = "6503101F1610202NLD<<<<<<<<<<<2"
    read = truth[:7] + "A" + truth[8:]
    fixed, log = repair_line(read, _probs(read, {7: {"A": 0.5, "F": 0.3, "P": 0.2}}))
    assert fixed == truth and (0, 7, "A", "F") in log
    # without probabilities, the letter a recogniser takes an M or an F for
    assert repair_line(truth[:7] + "H" + truth[8:])[0] == truth.replace("F1610", "M1610")
    assert repair_line(truth[:7] + "E" + truth[8:])[0] == truth


def test_page_sex_repaired_and_valid_but_never_silently() -> None:
    # an M read as H: no check digit covers sex, so the page is valid once repaired,
    # the repair is listed, and the field stays uncertain for the policy
    import numpy as np

    from drivers.mrz_ocr import ALPHABET
    from gate.mrz.certainty import uncertain_fields
    from gate.mrz.layout import TD3

    good = [L1, L2[:20] + "M" + L2[21:]]  # ICAO's specimen as a man (sex is under no check)
    l2 = good[1][:20] + "H" + good[1][21:]
    rec = parse_mrz([good[0], l2], today=TODAY, repair=True)
    assert rec.valid and rec.sex == "M" and (1, 20, "H", "M") in rec.repaired
    probs = [np.eye(len(ALPHABET))[[ALPHABET.index(c) for c in line]] for line in good]
    probs[1][20] = 0.0
    probs[1][20][ALPHABET.index("H")] = 0.7
    probs[1][20][ALPHABET.index("M")] = 0.3
    assert "sex" in uncertain_fields(rec.lines, probs, TD3)


def test_name_line_with_a_zero_is_no_document_number_line_whose_check_fails() -> None:
    # a Spanish card's name line read alone: a 0 at column 14 fits TD1's first line
    # (number check digit), but that check fails and every other position is a letter
    from gate.mrz.repair import repair_line

    fixed, _ = repair_line("ESPAN0LA<ESPAN0LA<<CARMEN<<<<<")
    assert fixed == "ESPANOLA<ESPANOLA<<CARMEN<<<<<"
    # a true first line whose check digit was misread keeps its digits
    first = "I<UTOD231458907<<<<<<<<<<<<<<<"
    misread = first[:14] + "5" + first[15:]
    assert repair_line(misread)[0] == misread


def test_a_check_digit_that_is_never_a_filler_gets_the_likeliest_digit() -> None:
    # TD1 line 2 of a Dutch card read alone: its last character, the composite check
    # digit over lines 1 and 2, read as a filler; ICAO prints a digit there always (a
    # filler stands for a check digit only over an empty optional field or an overflow)
    from gate.mrz.repair import repair_line

    truth = "1610019F1601014NLD<<<<<<<<<<<6"
    read = truth[:-1] + "<"
    fixed, log = repair_line(read, _probs(read, {29: {"<": 0.7, "6": 0.2, "8": 0.1}}))
    assert fixed == truth and (0, 29, "<", "6") in log
    # an empty optional field's check digit may be a filler: left alone
    td3 = "L898902C36UTO7408122F1204159<<<<<<<<<<<<<<<2"
    td3 = td3[:42] + "<" + td3[43:]
    assert repair_line(td3, _probs(td3, {42: {"<": 0.7, "0": 0.3}}))[0][42] == "<"
