using System.Data.Common;

namespace SharedEntities.AdoNet;

/// <summary>
/// A <see cref="DbDialect"/> whose database can also hold the store (SQLite's embedded store lives in the data's own
/// file), so that a store batch run while the loader holds a transaction would wait for that transaction. The loader
/// and the EF Core integration bind the store to such a transaction with <see cref="EnlistStore"/>, and run every
/// statement of this dialect synchronously even on the asynchronous paths, so that the enlistment (flowing with the
/// execution context) reaches the runtime's caller.
/// </summary>
public interface IStoreEnlistingDialect
{
    /// <summary>
    /// Called when the loader holds a transaction that other connections to the same database would wait for (its
    /// own commit transaction or locked read, or a locked read in the application's transaction), and before the EF Core
    /// integration raises dirty tokens in a committing transaction: lets a store that lives in the same database run
    /// inside it. Returns what ends the enlistment, or <see langword="null"/> when the store does not live there.
    /// </summary>
    IDisposable? EnlistStore(DbConnection connection, DbTransaction transaction);
}
