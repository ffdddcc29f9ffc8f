#[test]
fn show() {
    let sql = std::fs::read_to_string("/tmp/ast/in.sql").unwrap();
    for s in pgvshard::sql::parse(&sql).unwrap() {
        println!("{:#?}", s.ast);
    }
}
